"""escalations started from the console: who triggered them, and the secretary's note

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('escalations') as batch:
        batch.add_column(sa.Column('triggered_by', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('note', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('escalations') as batch:
        batch.drop_column('note')
        batch.drop_column('triggered_by')
