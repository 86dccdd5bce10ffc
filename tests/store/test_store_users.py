"""Users: creation, grants, practices, disabling at once, login with TOTP, tokens, SIP digests."""

import datetime as dt

import pytest

from callrouter.auth import totp
from callrouter.auth.permissions import allowed
from callrouter.store.audit import Actor, AuditLog
from callrouter.store.users import AuthFailed, UnknownUser, UserError, UserRepository, sip_digests

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)
ADMIN = Actor("root", "cli")
PW = "a long enough password"
TTL = dt.timedelta(hours=8)


@pytest.fixture
def users(db):
    return UserRepository(db, sip_realm="example.org")


@pytest.fixture
def audit(db):
    return AuditLog(db)


def add(users, name="alice", role="secretary", **kw):
    return users.add(ADMIN, name, name.title(), role, PW, T0, **kw)


def login(users, new, now=T0, password=PW, code=None):
    code = code or totp.code_at(new.totp_secret, now)
    return users.login(new.user.username, password, code, now, "192.0.2.9", TTL)


def test_add_stores_hashes_only_and_is_audited(db, users, audit):
    new = add(users, practices=("cab-b", "cab-a"), sip_password="sip secret 12345")
    assert new.user.practices == ("cab-a", "cab-b")
    assert new.user.has_sip_credential
    assert new.totp_uri.startswith("otpauth://totp/")
    (e,) = audit.query()
    assert (e.action, e.target, e.actor) == ("user.create", "user:alice", "root")
    assert PW not in e.after and "sip secret" not in e.after
    assert users.sip_credential("alice") == sip_digests("alice", "example.org", "sip secret 12345")


@pytest.mark.parametrize("kw, message", [
    (dict(name="Bad Name"), "username"),
    (dict(role="janitor"), "unknown role"),
    (dict(role="practitioner", external=True), "only a secretary can be external"),
    (dict(practices=("Not valid!",)), "invalid practice"),
])
def test_invalid_users_are_refused_and_nothing_written(users, audit, kw, message):
    with pytest.raises(UserError, match=message):
        add(users, **kw)
    assert users.list() == [] and audit.query() == []


def test_weak_password_is_refused(users):
    with pytest.raises(UserError, match="12 characters"):
        users.add(ADMIN, "bob", "Bob", "secretary", "short", T0)


def test_duplicate_username_is_refused_without_a_second_audit_entry(users, audit):
    add(users)
    with pytest.raises(UserError, match="already exists"):
        add(users)
    assert len(audit.query()) == 1


def test_login_with_password_and_totp_gives_a_token(users, audit):
    new = add(users)
    token, expires = login(users, new)
    assert expires == T0 + TTL
    assert users.authenticate(token, T0 + dt.timedelta(minutes=1)).username == "alice"
    assert users.authenticate(token, expires) is None
    assert users.authenticate("not a token", T0) is None
    assert audit.query()[0].action == "auth.login"


@pytest.mark.parametrize("how", ["password", "code", "user"])
def test_failed_login_is_refused_with_one_message_and_audited(users, audit, how):
    new = add(users)
    code = totp.code_at(new.totp_secret, T0)
    args = {"password": ("alice", "wrong password!!", code), "code": ("alice", PW, "000000"
            if code != "000000" else "111111"), "user": ("nobody", PW, code)}[how]
    with pytest.raises(AuthFailed, match="invalid username, password or code"):
        users.login(*args, T0, "192.0.2.9", TTL)
    assert audit.query()[0].action == "auth.login_failed"


def test_totp_code_cannot_be_replayed(users):
    new = add(users)
    login(users, new)
    with pytest.raises(AuthFailed):
        login(users, new, now=T0 + dt.timedelta(seconds=5))


def test_disable_takes_effect_at_once(users, audit):
    new = add(users, sip_password="sip secret 12345")
    token, _ = login(users, new)
    view = users.disable(ADMIN, "alice", T0 + dt.timedelta(minutes=1))
    assert not view.enabled and not view.has_sip_credential
    assert users.authenticate(token, T0 + dt.timedelta(minutes=2)) is None
    assert users.sip_credential("alice") is None
    assert allowed(view.role, "calls", "read", view.attrs) == (False, "account disabled")
    with pytest.raises(AuthFailed):
        login(users, new, now=T0 + dt.timedelta(minutes=5))
    entry = next(e for e in audit.query() if e.action == "user.disable")
    assert '"enabled":true' in entry.before and '"enabled":false' in entry.after
    assert '"tokens_revoked":1' in entry.details


def test_grant_practitioner_to_external_secretary_is_refused(users, audit):
    add(users, external=True)
    with pytest.raises(UserError, match="external secretary can never act as a practitioner"):
        users.grant(ADMIN, "alice", "practitioner", "act", T0)
    assert users.get("alice").grants == ()
    assert [e.action for e in audit.query()] == ["user.create"]


def test_grant_and_revoke_are_audited_and_honoured(users, audit):
    add(users)
    view = users.grant(ADMIN, "alice", "exports", "run", T0)
    assert view.grants == ("exports:run",)
    assert allowed("secretary", "exports", "run", view.attrs)[0]
    view = users.revoke(ADMIN, "alice", "exports", "run", T0)
    assert not allowed("secretary", "exports", "run", view.attrs)[0]
    assert [e.action for e in audit.query()][:2] == ["user.revoke", "user.grant"]


def test_set_practices_replaces_the_covered_practices(users):
    add(users, practices=("a1",))
    assert users.set_practices(ADMIN, "alice", ("b1", "c1"), T0).practices == ("b1", "c1")


def test_unknown_user(users):
    with pytest.raises(UnknownUser):
        users.disable(ADMIN, "ghost", T0)


def test_list_by_role(users):
    add(users, "alice")
    add(users, "bob", role="practitioner")
    assert [u.username for u in users.list()] == ["alice", "bob"]
    assert [u.username for u in users.list(role="practitioner")] == ["bob"]


def test_logout_and_expired_token_purge(users):
    new = add(users)
    token, _ = login(users, new)
    users.logout(token)
    assert users.authenticate(token, T0) is None
    token, _ = login(users, new, now=T0 + dt.timedelta(minutes=1))
    assert users.purge_expired_tokens(T0 + TTL + dt.timedelta(hours=1)) == 1


def test_repeated_failures_lock_the_name_for_a_while(users, audit):
    new = add(users)
    for i in range(5):
        with pytest.raises(AuthFailed):
            users.login("alice", "wrong password!!", "000000", T0 + dt.timedelta(seconds=i),
                        "192.0.2.9", TTL)
    with pytest.raises(AuthFailed):
        login(users, new, now=T0 + dt.timedelta(minutes=1))
    assert '"reason":"locked: too many failed attempts"' in audit.query()[0].details
    token, _ = login(users, new, now=T0 + dt.timedelta(minutes=20))
    assert token


def test_the_last_administrator_can_be_neither_disabled_nor_demoted(users, audit):
    add(users, "root", role="administrator")
    with pytest.raises(UserError, match="last enabled administrator"):
        users.disable(ADMIN, "root", T0)
    with pytest.raises(UserError, match="last enabled administrator"):
        users.set_role(ADMIN, "root", "supervisor", False, T0)
    assert users.get("root").enabled and users.get("root").role == "administrator"
    assert [e.action for e in audit.query()] == ["user.create"]
    add(users, "second", role="administrator")  # with another one, either may go
    assert users.set_role(ADMIN, "root", "supervisor", False, T0).role == "supervisor"
    with pytest.raises(UserError, match="last enabled administrator"):
        users.disable(ADMIN, "second", T0)
