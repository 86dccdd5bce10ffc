"""Alembic environment: the engine comes from `callrouter.store.db.alembic_config`."""

from __future__ import annotations

from alembic import context

from callrouter.store.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # pragma: no cover - only when alembic is run by hand
    from callrouter.config import load_settings
    from callrouter.store.db import make_engine

    engine = make_engine(load_settings(None).database_url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
