"""`callrouter auth ...` and the key files as the CLI and `callrouter serve` use them, against the
real databases: created 0600 at first use, rotation installing the new key, a lost key stopping
everything with what to do."""

import datetime as dt
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from callrouter.auth import sealing
from callrouter.auth.sealing import KeyFileBox
from callrouter.auth.totp import code_at
from callrouter.ports import Actor
from callrouter.store.keys import open_keys
from callrouter.store.testing import KINDS
from callrouter.store.totp_secrets import secrets_state
from callrouter.store.users import UserRepository
from tests.cli_support import cli_database, run

CLI = str(Path(sys.executable).with_name("callrouter"))
PASSWORD = "a long enough password"


@pytest.fixture(params=KINDS)
def cli_db(request, tmp_path, monkeypatch):
    """A migrated database given to the CLI through the environment; `var/` under tmp_path."""
    with cli_database(request.param, tmp_path, monkeypatch) as db:
        yield db


def add_user(capsys, name="alice") -> str:
    assert run("users", "add", name, "--role", "secretary", "--password-stdin", stdin=PASSWORD + "\n") == 0
    return re.search(r"TOTP secret \(shown once\): (\w+)", capsys.readouterr().out).group(1)


def raw_secret(db, name):
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT totp_secret FROM users WHERE username = :u"), {"u": name}).scalar()


def test_the_first_command_creates_both_key_files_readable_by_their_owner_only(cli_db, capsys, tmp_path):
    secret = add_user(capsys)
    for name in ("secrets.key", "audit.key"):
        assert stat.S_IMODE((tmp_path / "var" / name).stat().st_mode) == 0o600
    assert secret not in raw_secret(cli_db, "alice")
    assert run("auth", "status") == 0
    out = capsys.readouterr().out
    assert "TOTP secrets: 0 in clear, sealed: 1 with key" in out and "chain intact and anchored" in out


def test_rotate_key_reseals_installs_the_new_key_and_keeps_the_old_one_apart(cli_db, capsys, tmp_path):
    secrets = {name: add_user(capsys, name) for name in ("alice", "bob")}
    key_file = tmp_path / "var" / "secrets.key"
    old_id = KeyFileBox(key_file).key_id
    assert run("auth", "rotate-key", "--new", "new.key") == 0
    out = capsys.readouterr().out
    new_id = KeyFileBox(tmp_path / "new.key").key_id
    assert f"re-sealed 2 TOTP secret(s) with key {new_id} (was {old_id}), in one transaction" in out
    assert sealing.read_key_file(key_file) == sealing.read_key_file(tmp_path / "new.key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    retired = tmp_path / "var" / f"secrets.key.{old_id}.retired"
    assert KeyFileBox(retired).key_id == old_id
    assert secrets_state(cli_db).sealed == {new_id: 2}
    now = dt.datetime.now(dt.timezone.utc)
    box = open_keys(cli_db, key_file, tmp_path / "var" / "audit.key", Actor("test", "test"), now)  # as serve does
    users = UserRepository(cli_db, totp_box=box)
    for name, secret in secrets.items():
        users.login(name, PASSWORD, code_at(secret, now), now, "127.0.0.1", dt.timedelta(hours=1))
    assert run("db", "verify-audit") == 0
    assert "head anchored by" in capsys.readouterr().out
    assert run("auth", "rotate-key", "--new", str(key_file)) == 1
    assert "holds the current key" in capsys.readouterr().err


def test_a_lost_key_file_stops_the_cli_and_the_service_with_what_to_do(cli_db, capsys, tmp_path):
    add_user(capsys)
    (tmp_path / "var" / "secrets.key").unlink()
    assert run("users", "list") == 1
    err = capsys.readouterr().err
    assert "is missing, but 1 TOTP secret(s) in the database are sealed" in err and "restore that file" in err
    assert not (tmp_path / "var" / "secrets.key").exists()
    serve = subprocess.run([CLI, "serve"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "CALLROUTER_DATABASE_URL": cli_db.url})
    assert serve.returncode == 1, serve.stderr[-2000:]
    assert "restore that file" in serve.stderr and "Traceback" not in serve.stderr
    assert not (tmp_path / "var" / "secrets.key").exists()


def test_seal_secrets_seals_what_an_older_version_stored_in_clear(cli_db, capsys, tmp_path):
    new = UserRepository(cli_db).add(Actor("admin", "cli"), "alice", "Alice", "secretary", PASSWORD,
                                     dt.datetime.now(dt.timezone.utc))
    assert raw_secret(cli_db, "alice") == new.totp_secret
    assert run("auth", "seal-secrets") == 0
    assert "sealed 1 TOTP secret(s)" in capsys.readouterr().out
    assert new.totp_secret not in raw_secret(cli_db, "alice")
    assert run("auth", "seal-secrets") == 0
    assert "sealed 0 TOTP secret(s)" in capsys.readouterr().out
