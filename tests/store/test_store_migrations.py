"""Migrations build the schema from empty and match the models exactly."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from alembic.config import Config
from alembic.script import ScriptDirectory

from callrouter.store.db import MIGRATIONS
from callrouter.store.models import AuditHead, Base
from callrouter.store.testing import KINDS, fresh_database


def head() -> str:
    """The single head of the migration history (several heads would fail here)."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return ScriptDirectory.from_config(config).get_current_head()


@pytest.mark.parametrize("kind", KINDS)
def test_upgrade_from_empty_creates_every_table(kind, tmp_path):
    with fresh_database(kind, tmp_path, migrate=False) as db:
        assert db.current_revision() is None
        assert not set(inspect(db.engine).get_table_names()) & set(Base.metadata.tables)
        db.upgrade()
        assert db.current_revision() == head()
        tables = set(inspect(db.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables


def test_models_match_migrations(db):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent_and_seeds_the_audit_genesis(db):
    db.upgrade()
    with db.transaction() as session:
        head = session.scalars(select(AuditHead)).one()
    assert (head.last_seq, head.last_hash) == (0, "0" * 64)


def test_model_migration_comparison_notices_a_difference(db):
    """Guards the check above: a column missing from the migrations is reported."""
    from sqlalchemy import Column, MetaData, String

    changed = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["calls"].append_column(Column("extra", String(10)))
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), changed)
    assert [d[0] for d in diff] == ["add_column"]


def test_migrations_downgrade_to_empty_and_back(db):
    from alembic import command

    from callrouter.store.db import alembic_config

    command.downgrade(alembic_config(db.engine), "base")
    assert not set(inspect(db.engine).get_table_names()) & set(Base.metadata.tables)
    db.upgrade()
    assert db.current_revision() == head()


def test_unreachable_postgresql_is_an_error_not_a_skip(tmp_path, monkeypatch):
    """CI has PostgreSQL: if it is gone, the PostgreSQL tests must fail loudly."""
    import socket

    from sqlalchemy.exc import OperationalError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    monkeypatch.setenv("CALLROUTER_TEST_POSTGRES_URL",
                       f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")
    with pytest.raises(OperationalError):
        with fresh_database("postgresql", tmp_path):
            pass
