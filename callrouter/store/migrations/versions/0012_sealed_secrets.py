"""TOTP secrets sealed at rest (a longer column) and the audit head's MAC

`users.totp_secret` grows from 64 to 255 characters: a sealed secret (callrouter.auth.sealing) is
about 105. The secrets themselves are sealed by the service at its first start, which has the key
file (a migration does not). `audit_head.head_mac` holds the HMAC anchoring the chain's head
(callrouter.store.audit_anchor); NULL until the service first anchors it.

On SQLite, rebuilding `users` (what a batch ALTER does) would fire the ON DELETE CASCADE of the
tables referring to it while foreign keys are on, which a PRAGMA cannot turn off inside the
migration's transaction. The declared length is not enforced by SQLite and does not change how
rows are stored, so the table's declaration is edited in place instead (the schema's version is
bumped so every connection re-reads it), as SQLite's documentation describes for changes that
leave the stored format as it is.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def _sqlite_declared_length(old: int, new: int) -> None:
    bind = op.get_bind()
    before, after = f"totp_secret VARCHAR({old})", f"totp_secret VARCHAR({new})"
    sql = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type='table' AND name='users'").scalar()
    if before not in sql:
        raise RuntimeError(f"users table declaration without {before!r}: {sql}")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    bind.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type='table' AND name='users'",
                         (sql.replace(before, after),))
    bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_declared_length(64, 255)
    else:
        op.alter_column('users', 'totp_secret', type_=sa.String(length=255),
                        existing_type=sa.String(length=64), existing_nullable=False)
    with op.batch_alter_table('audit_head') as batch:
        batch.add_column(sa.Column('head_mac', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_head') as batch:
        batch.drop_column('head_mac')
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_declared_length(255, 64)
    else:
        op.alter_column('users', 'totp_secret', type_=sa.String(length=64),
                        existing_type=sa.String(length=255), existing_nullable=False)
