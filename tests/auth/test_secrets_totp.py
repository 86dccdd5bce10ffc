"""Users' TOTP secrets sealed at rest in the real SQLite and PostgreSQL databases: a dump alone
reveals none, a wrong key fails clearly, secrets in clear are sealed once, rotation is one
transaction."""

import datetime as dt
import stat

import pytest
from sqlalchemy import text

from callrouter.auth import sealing
from callrouter.auth.sealing import KeyFileBox, KeyFileError, SealingError, SecretBox, WrongKey
from callrouter.auth.totp import code_at
from callrouter.domain.errors import AuthFailed
from callrouter.ports import Actor
from callrouter.store.audit import AuditLog
from callrouter.store.totp_secrets import open_secrets, rotate, seal_plaintext, secrets_state
from callrouter.store.users import UserRepository

T0 = dt.datetime(2026, 3, 2, 8, 0, 10, tzinfo=dt.timezone.utc)
ADMIN = Actor("admin", "cli")
PASSWORD = "a long enough password"
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def key_path(tmp_path):
    path = tmp_path / "var" / "secrets.key"
    sealing.create_key_file(path)
    return path


def raw_secret(db, username):
    """The column as a dump of the database shows it."""
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT totp_secret FROM users WHERE username = :u"), {"u": username}).scalar()


def set_raw_secret(db, username, value):
    """What someone with write access to the database can do."""
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE users SET totp_secret = :v WHERE username = :u"), {"v": value, "u": username})


def add(users, name):
    return users.add(ADMIN, name, name.title(), "secretary", PASSWORD, T0)


def test_a_dump_of_the_database_does_not_reveal_a_totp_secret(db, key_path):
    users = UserRepository(db, totp_box=KeyFileBox(key_path))
    new = add(users, "alice")
    stored = raw_secret(db, "alice")
    assert stored != new.totp_secret and new.totp_secret not in stored
    assert stored.startswith("aesgcm1$") and len(stored) <= 255
    token, _ = users.login("alice", PASSWORD, code_at(new.totp_secret, T0), T0, "127.0.0.1", HOUR)
    assert users.authenticate(token, T0).username == "alice"


def test_with_the_wrong_key_the_secret_does_not_open_and_says_why(db, key_path, tmp_path):
    new = add(UserRepository(db, totp_box=KeyFileBox(key_path)), "alice")
    other = tmp_path / "other.key"
    sealing.create_key_file(other)
    with pytest.raises(WrongKey, match=f"sealed with key {KeyFileBox(key_path).key_id}, but the key file "
                                       f"{other} is key {KeyFileBox(other).key_id}"):
        KeyFileBox(other).open(raw_secret(db, "alice"), "callrouter totp secret of user 1")
    wrong = UserRepository(db, totp_box=KeyFileBox(other))
    with pytest.raises(AuthFailed):
        wrong.login("alice", PASSWORD, code_at(new.totp_secret, T0), T0, "127.0.0.1", HOUR)
    (failed,) = AuditLog(db).query(action="auth.login_failed")
    assert '"TOTP secret unreadable"' in failed.details


def test_a_sealed_secret_copied_onto_another_user_does_not_open_there(db, key_path):
    users = UserRepository(db, totp_box=KeyFileBox(key_path))
    alice, _ = add(users, "alice"), add(users, "bob")
    set_raw_secret(db, "bob", raw_secret(db, "alice"))  # so that alice's phone would sign bob in
    with pytest.raises(AuthFailed):
        users.login("bob", PASSWORD, code_at(alice.totp_secret, T0), T0, "127.0.0.1", HOUR)


def test_a_secret_put_in_clear_by_someone_with_database_rights_is_refused(db, key_path):
    users = UserRepository(db, totp_box=KeyFileBox(key_path))
    add(users, "alice")
    chosen = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    set_raw_secret(db, "alice", chosen)
    with pytest.raises(AuthFailed):
        users.login("alice", PASSWORD, code_at(chosen, T0), T0, "127.0.0.1", HOUR)
    assert users.totp_enrolment("alice", PASSWORD, T0) is None


def test_secrets_in_clear_are_sealed_at_first_start_once(db, tmp_path):
    before = [add(UserRepository(db), name) for name in ("alice", "bob")]  # as stored before sealing
    assert raw_secret(db, "alice") == before[0].totp_secret
    path = tmp_path / "var" / "secrets.key"
    box = open_secrets(db, path, ADMIN, T0)  # the key file created, then the secrets sealed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secrets_state(db).clear == 0 and secrets_state(db).sealed == {box.key_id: 2}
    assert all(new.totp_secret not in raw_secret(db, new.user.username) for new in before)
    assert seal_plaintext(db, box, ADMIN, T0) == 0  # idempotent
    open_secrets(db, path, ADMIN, T0)
    assert [e.details for e in AuditLog(db).query(action="auth.secrets_sealed")] == [
        f'{{"key":"{box.key_id}","secrets":2}}']
    users = UserRepository(db, totp_box=box)
    users.login("bob", PASSWORD, code_at(before[1].totp_secret, T0), T0, "127.0.0.1", HOUR)
    assert users.totp_enrolment("alice", PASSWORD, T0).startswith("otpauth://totp/")


def test_a_missing_key_file_is_never_replaced_once_secrets_are_sealed(db, key_path):
    add(UserRepository(db, totp_box=KeyFileBox(key_path)), "alice")
    key_path.unlink()
    with pytest.raises(KeyFileError, match=r"is missing, but 1 TOTP secret\(s\) in the database are sealed "
                                           r"with key \w+: restore that file"):
        open_secrets(db, key_path, ADMIN, T0)
    assert not key_path.exists()


def test_a_key_file_that_is_not_the_databases_stops_the_start(db, key_path, tmp_path):
    add(UserRepository(db, totp_box=KeyFileBox(key_path)), "alice")
    other = tmp_path / "other.key"
    sealing.create_key_file(other)
    with pytest.raises(KeyFileError, match=rf"1 TOTP secret\(s\) are sealed with key {KeyFileBox(key_path).key_id}, "
                                           rf"but the key file {other} holds key"):
        open_secrets(db, other, ADMIN, T0)


def test_rotation_reseals_every_secret_in_one_transaction(db, key_path):
    old = KeyFileBox(key_path)
    users = UserRepository(db, totp_box=old)
    made = [add(users, name) for name in ("alice", "bob", "carol")]
    new = SecretBox(sealing.new_key())
    assert rotate(db, old, new, ADMIN, T0) == 3
    assert secrets_state(db).sealed == {new.key_id: 3}
    rotated = UserRepository(db, totp_box=new)
    for n in made:
        rotated.login(n.user.username, PASSWORD, code_at(n.totp_secret, T0), T0, "127.0.0.1", HOUR)
    with pytest.raises(AuthFailed):
        UserRepository(db, totp_box=SecretBox(sealing.read_key_file(key_path))).login(
            "alice", PASSWORD, code_at(made[0].totp_secret, T0 + HOUR), T0 + HOUR, "127.0.0.1", HOUR)
    (entry,) = AuditLog(db).query(action="auth.key_rotated")
    assert entry.details == f'{{"from":"{old.key_id}","secrets":3,"to":"{new.key_id}"}}'


def test_a_secret_that_does_not_open_aborts_the_rotation_with_nothing_changed(db, key_path):
    old = KeyFileBox(key_path)
    users = UserRepository(db, totp_box=old)
    add(users, "alice"), add(users, "bob")
    set_raw_secret(db, "bob", raw_secret(db, "alice"))  # bob's row tampered with
    before = {n: raw_secret(db, n) for n in ("alice", "bob")}
    with pytest.raises(SealingError, match="the TOTP secret of bob does not open .* nothing was changed"):
        rotate(db, old, SecretBox(sealing.new_key()), ADMIN, T0)
    assert {n: raw_secret(db, n) for n in ("alice", "bob")} == before
    assert AuditLog(db).query(action="auth.key_rotated") == []
