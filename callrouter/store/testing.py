"""Fresh, migrated databases for tests: a SQLite file, or a private schema on a real PostgreSQL.

Shipped in the package so every test suite (store, web, controller) can use the real databases.
PostgreSQL must be reachable: when it is not, the tests using it fail rather than skip, because CI
has it and a silent skip would hide a broken store.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, text

from callrouter.store.db import Database

POSTGRES_URL_ENV = "CALLROUTER_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KINDS = ("sqlite", "postgresql")
_SCHEMA_PREFIX = "cr_test_"
_counter = itertools.count()
_swept = False


def postgres_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)


@contextlib.contextmanager
def fresh_database(kind: str, tmp_path: Path, migrate: bool = True) -> Iterator[Database]:
    """A brand-new database of `kind`, migrated to head unless `migrate` is False; dropped after."""
    if kind == "sqlite":
        db = Database.from_url(f"sqlite:///{tmp_path / 'callrouter.db'}")
        try:
            if migrate:
                db.upgrade()
            yield db
        finally:
            db.dispose()
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}")
    url = postgres_url()
    schema = f"{_SCHEMA_PREFIX}{os.getpid()}_{next(_counter)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            _sweep_leftovers(conn)
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        db = Database.from_url(f"{url}?options=-csearch_path%3D{schema}")
        try:
            if migrate:
                db.upgrade()
            yield db
        finally:
            db.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


def _sweep_leftovers(conn) -> None:
    """Drop test schemas left by runs that died (their pid is gone); never touch a live run's."""
    global _swept
    if _swept:
        return
    _swept = True
    rows = conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                        {"p": _SCHEMA_PREFIX + "%"}).scalars()
    for name in list(rows):
        match = re.fullmatch(_SCHEMA_PREFIX + r"(\d+)_\d+", name)
        if match and not _pid_alive(int(match.group(1))):
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_append_only_guard(db: Database) -> None:
    """Remove the trigger refusing UPDATE on audit entries, as an intruder with DDL rights could,
    so tests can check that the hash chain still exposes the tampering."""
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_entries_no_update ON audit_entries"))
        else:
            conn.execute(text("DROP TRIGGER audit_entries_no_update"))
