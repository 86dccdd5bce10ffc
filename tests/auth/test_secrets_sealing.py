"""Sealing secrets with a key file: AES-GCM values bound to their context, key files only their
owner can read, a wrong key reported as such."""

import os
import stat

import pytest
from hypothesis import given, settings, strategies as st

from callrouter.auth import sealing
from callrouter.auth.sealing import KeyFileBox, KeyFileError, SecretBox, Unsealable, WrongKey

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture
def box():
    return SecretBox(sealing.new_key())


def test_a_sealed_value_names_its_key_and_hides_the_secret(box):
    sealed = box.seal(SECRET, "user 1")
    assert sealing.is_sealed(sealed) and sealing.sealed_key_id(sealed) == box.key_id
    assert SECRET not in sealed and SECRET.lower() not in sealed.lower()
    assert box.open(sealed, "user 1") == SECRET
    assert box.seal(SECRET, "user 1") != sealed  # a fresh nonce each time


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=80), st.text(min_size=1, max_size=40))
def test_any_text_opens_back_in_its_own_context_only(plaintext, context):
    box = SecretBox(b"k" * 32)
    sealed = box.seal(plaintext, context)
    assert box.open(sealed, context) == plaintext
    with pytest.raises(Unsealable):
        box.open(sealed, context + "x")


def test_a_value_copied_to_another_context_does_not_open(box):
    with pytest.raises(Unsealable, match="copied from another record"):
        box.open(box.seal(SECRET, "user 1"), "user 2")


def test_an_altered_value_does_not_open(box):
    sealed = box.seal(SECRET, "user 1")
    prefix, kid, body = sealed.split("$")
    flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    with pytest.raises(Unsealable, match="altered"):
        box.open(f"{prefix}${kid}${flipped}", "user 1")
    with pytest.raises(Unsealable):
        box.open(f"{prefix}${kid}$!!", "user 1")


def test_the_wrong_key_fails_clearly_naming_both_keys(box):
    other = SecretBox(sealing.new_key(), "the key file other.key")
    sealed = box.seal(SECRET, "user 1")
    with pytest.raises(WrongKey) as caught:
        other.open(sealed, "user 1")
    assert caught.value.key_id == box.key_id
    assert str(caught.value) == f"sealed with key {box.key_id}, but the key file other.key is key {other.key_id}"


def test_a_clear_value_is_not_a_sealed_one(box):
    assert not sealing.is_sealed(SECRET) and sealing.sealed_key_id(SECRET) is None
    assert not sealing.is_sealed("") and not sealing.is_sealed(None)
    with pytest.raises(Unsealable, match="not a sealed value"):
        box.open(SECRET, "user 1")


def test_a_key_file_is_created_readable_by_its_owner_only_and_never_overwritten(tmp_path):
    path = tmp_path / "keys" / "secrets.key"
    key = sealing.create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sealing.read_key_file(path) == key and len(key) == 32
    with pytest.raises(KeyFileError, match="already exists"):
        sealing.create_key_file(path)
    assert sealing.read_key_file(path) == key


def test_a_key_file_open_to_others_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "secrets.key"
    sealing.create_key_file(path)
    os.chmod(path, 0o640)
    with pytest.raises(KeyFileError, match=r"open to others \(mode 0640\): run `chmod 600 "):
        sealing.read_key_file(path)


@pytest.mark.parametrize("content", ["", "not base64 at all!\n", "c2hvcnQ=\n"])
def test_a_malformed_or_missing_key_file_is_refused(tmp_path, content):
    path = tmp_path / "secrets.key"
    with pytest.raises(KeyFileError, match="does not exist"):
        sealing.read_key_file(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content.encode())
    os.close(fd)
    with pytest.raises(KeyFileError, match="32-byte key in base64"):
        sealing.read_key_file(path)


def test_a_key_file_box_rereads_its_file_when_the_key_was_rotated(tmp_path):
    path = tmp_path / "secrets.key"
    box = KeyFileBox(path, sealing.create_key_file(path))
    old_id = box.key_id
    new_key = sealing.new_key()
    resealed = SecretBox(new_key).seal(SECRET, "user 1")
    with pytest.raises(WrongKey):  # the file still holds the old key
        box.open(resealed, "user 1")
    assert box.key_id == old_id
    path.unlink()
    sealing.write_key_file(path, new_key)  # as `callrouter auth rotate-key` installs it
    assert box.open(resealed, "user 1") == SECRET
    assert box.key_id == SecretBox(new_key).key_id != old_id
