"""`callrouter db ...` and `callrouter users ...` against the real databases."""


import pytest

from callrouter.store.audit import AuditLog
from callrouter.store.testing import KINDS
from callrouter.store.users import UserRepository
from tests.cli_support import cli_database, run


@pytest.fixture(params=KINDS)
def empty_db(request, tmp_path, monkeypatch):
    """A database with no schema yet, its URL given to the CLI through the environment."""
    with cli_database(request.param, tmp_path, monkeypatch, migrate=False) as db:
        yield db


def test_db_upgrade_then_users_lifecycle(empty_db, capsys):
    from alembic.script import ScriptDirectory

    from callrouter.store.db import alembic_config

    assert run("db", "upgrade") == 0
    head = ScriptDirectory.from_config(alembic_config(empty_db.engine)).get_current_head()
    assert f"revision {head}\n" in capsys.readouterr().out
    assert run("users", "add", "alice", "--role", "secretary", "--external", "--practice",
               "cab-a", "--password-stdin", stdin="a long enough password\n") == 0
    out = capsys.readouterr().out
    assert "TOTP secret (shown once)" in out
    assert run("users", "grant", "alice", "exports:run") == 0
    assert run("users", "grant", "alice", "practitioner:act") == 1
    assert "never act as a practitioner" in capsys.readouterr().err
    assert run("users", "disable", "alice") == 0
    assert run("users", "list") == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.split("\t")[:3] == ["alice", "secretary (external)", "DISABLED"]
    view = UserRepository(empty_db).get("alice")
    assert view.grants == ("exports:run",) and not view.enabled
    actions = [e.action for e in AuditLog(empty_db).query()]
    assert actions == ["user.disable", "user.grant", "user.create"]
    assert AuditLog(empty_db).query()[0].actor.startswith("cli:")


def test_db_purge_is_audited_and_verify_audit_checks_the_chain(empty_db, capsys):
    run("db", "upgrade")
    assert run("db", "purge") == 0
    assert "purged 0 call records" in capsys.readouterr().out
    assert AuditLog(empty_db).query()[0].action == "retention.purge"
    assert run("db", "verify-audit") == 0
    assert "intact (1 entries" in capsys.readouterr().out


def test_bad_settings_file_is_reported(empty_db, tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("retention: {call_records_dayz: 3}\n")
    assert run("db", "upgrade", "--config", str(cfg)) == 2
    assert "retention.call_records_dayz: unknown key" in capsys.readouterr().err


def test_weak_password_refused_by_cli(empty_db, capsys):
    run("db", "upgrade")
    assert run("users", "add", "bob", "--role", "secretary", "--password-stdin",
               stdin="short\n") == 1
    assert "12 characters" in capsys.readouterr().err


def test_sip_password_is_set_then_cleared_by_disable(empty_db, capsys):
    run("db", "upgrade")
    run("users", "add", "bob", "--role", "secretary", "--password-stdin",
        stdin="a long enough password\n")
    assert run("users", "sip-password", "bob", "--password-stdin",
               stdin="another long secret\n") == 0
    users = UserRepository(empty_db)
    assert users.sip_credential("bob") is not None
    run("users", "disable", "bob")
    assert users.sip_credential("bob") is None
    assert run("users", "sip-password", "bob", "--password-stdin",
               stdin="another long secret\n") == 1
    assert "disabled" in capsys.readouterr().err


NEEDS_SCHEMA = (
    ("users", "add", "alice", "--role", "secretary", "--password-stdin"),
    ("users", "list"),
    ("users", "disable", "alice"),
    ("users", "grant", "alice", "exports:run"),
    ("users", "sip-password", "alice", "--password-stdin"),
    ("db", "purge"),
    ("db", "verify-audit"),
    ("serve",),
)


def _script(*argv, env):
    """The installed `callrouter` script, as an operator runs it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("callrouter")
    return subprocess.run([str(script), *argv], input="a long enough password\n", capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def test_every_command_needing_the_schema_says_to_run_db_upgrade_on_a_fresh_database(empty_db):
    """On a database never migrated, each command stops with one line naming `callrouter db
    upgrade` and exit code 1: no traceback, nothing created."""
    env = {"CALLROUTER_DATABASE_URL": empty_db.url}
    for argv in NEEDS_SCHEMA:
        done = _script(*argv, env=env)
        assert done.returncode == 1, (argv, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, (argv, done.stderr)
        assert lines[0].startswith("error: ") and "no schema yet: run `callrouter db upgrade`" in lines[0]
    assert empty_db.current_revision() is None


def test_a_database_behind_the_latest_migration_is_named_with_both_revisions(empty_db):
    from alembic.script import ScriptDirectory

    from callrouter.store.db import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config(empty_db.engine))
    head = scripts.get_current_head()
    previous = scripts.get_revision(head).down_revision
    empty_db.upgrade(previous)
    done = _script("users", "list", env={"CALLROUTER_DATABASE_URL": empty_db.url})
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"at revision {previous}, this version needs {head}: run `callrouter db upgrade`" in done.stderr
    assert run("db", "upgrade") == 0 and empty_db.current_revision() == head
