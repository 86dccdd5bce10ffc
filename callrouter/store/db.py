"""Engine, sessions and migrations.

`Database` is safe to share between threads: each repository call opens one short transaction with
`transaction()`, which is what lets the Twisted controller run it in a thread pool. Within
`batch()`, the repository calls of that thread share one transaction instead (the call recorder
writes what it has queued that way: one commit for many writes).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

MIGRATIONS = "callrouter.store:migrations"
PG_CONNECT_TIMEOUT_S = 5  # unless the URL gives its own connect_timeout
PG_TCP_USER_TIMEOUT_MS = 30_000  # unless the URL gives its own tcp_user_timeout


def make_engine(url: str) -> Engine:
    """An engine for `url` (PostgreSQL options such as search_path go in its query string).

    hide_parameters: SQL errors and echo never show bound values, which include caller numbers.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # A database that stops answering (a black-holed address, a dead primary) must fail a
    # connection in seconds, not hang the thread that asked: every write is retried anyway.
    # A connection whose server went silent mid-way (a network cut) is dropped by the kernel after
    # PG_TCP_USER_TIMEOUT_MS of unacknowledged data, not after the ~15 minutes of TCP's retries.
    defaults = {"connect_timeout": PG_CONNECT_TIMEOUT_S, "tcp_user_timeout": PG_TCP_USER_TIMEOUT_MS}
    connect_args = {key: value for key, value in defaults.items() if key not in parsed.query}
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Let SQLAlchemy, not the driver, emit BEGIN (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_begin(conn) -> None:
    """Take SQLite's write lock at BEGIN: a deferred transaction that reads then writes fails with
    SQLITE_BUSY instead of waiting when another thread wrote meanwhile. Transactions are short, so
    serialising them costs little on the single-node SQLite setup."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["engine"] = engine
    return config


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._batch = threading.local()  # .session: the batch() in progress on this thread

    @classmethod
    def from_url(cls, url: str) -> "Database":
        return cls(make_engine(url))

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back entirely if it raises.
        Inside `batch()` (same thread), the batch's session: committed with the batch."""
        shared = getattr(self._batch, "session", None)
        if shared is not None:
            yield shared
            return
        with self._sessions() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Every `transaction()` of this thread within the block is one transaction, committed
        when the block ends; if anything in it raises, all of it is rolled back."""
        if getattr(self._batch, "session", None) is not None:
            yield  # already in one
            return
        with self._sessions() as session, session.begin():
            self._batch.session = session
            try:
                yield
            finally:
                self._batch.session = None

    def upgrade(self, revision: str = "head") -> None:
        logger.info("upgrading database %s to %s", self.engine.url.render_as_string(), revision)
        command.upgrade(alembic_config(self.engine), revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def schema_problem(self) -> str | None:
        """Why this version cannot use the database yet (one line, for the CLI), or None when it is
        at the latest migration. Commands other than `db upgrade` check it before any query."""
        where = self.engine.url.render_as_string(hide_password=True)
        try:  # read alembic's table directly: its MigrationContext logs at INFO on every use
            with self.engine.connect() as conn:
                current = (conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                           if inspect(conn).has_table("alembic_version") else None)
        except SQLAlchemyError as exc:
            return f"cannot open the database {where}: {str(exc.orig or exc).strip().splitlines()[0]}"
        from alembic.script import ScriptDirectory

        scripts = ScriptDirectory.from_config(alembic_config(self.engine))
        head = scripts.get_current_head()
        if current == head:
            return None
        if current is None:
            return f"the database {where} has no schema yet: run `callrouter db upgrade`"
        if current not in {s.revision for s in scripts.walk_revisions()}:
            return (f"the database {where} is at revision {current}, unknown to this version "
                    f"(latest {head}): it was migrated by a newer callrouter")
        return (f"the database {where} is at revision {current}, this version needs {head}: "
                f"run `callrouter db upgrade`")

    def dispose(self) -> None:
        self.engine.dispose()
