"""Password hashing and TOTP."""

import datetime as dt

import pytest

from callrouter.auth import passwords, totp

NOW = dt.datetime(2026, 3, 2, 8, 0, 10, tzinfo=dt.timezone.utc)


def test_password_hash_is_argon2id_and_verifies():
    h = passwords.hash_password("correct horse battery")
    assert h.startswith("$argon2id$")
    assert "correct horse" not in h
    assert passwords.verify_password(h, "correct horse battery")
    assert not passwords.verify_password(h, "wrong")
    assert not passwords.verify_password("garbage", "wrong")


def test_short_password_is_refused():
    with pytest.raises(passwords.WeakPassword, match="12 characters"):
        passwords.check_strength("short")


def test_totp_code_accepted_in_window_and_only_once():
    secret = totp.new_secret()
    code = totp.code_at(secret, NOW)
    step = totp.matching_step(secret, code, NOW, None)
    assert step == int(NOW.timestamp()) // 30
    assert totp.matching_step(secret, code, NOW + dt.timedelta(seconds=25), None) == step
    assert totp.matching_step(secret, code, NOW, last_step=step) is None


def test_totp_wrong_or_stale_code_refused():
    secret = totp.new_secret()
    code = totp.code_at(secret, NOW)
    assert totp.matching_step(secret, code, NOW + dt.timedelta(minutes=5), None) is None
    assert totp.matching_step(secret, "abcdef", NOW, None) is None
    other = "000000" if code != "000000" else "111111"
    assert totp.matching_step(secret, other, NOW, None) is None


def test_provisioning_uri_names_issuer_and_user():
    uri = totp.provisioning_uri(totp.new_secret(), "alice", "callrouter")
    assert uri.startswith("otpauth://totp/callrouter:alice?") and "issuer=callrouter" in uri
