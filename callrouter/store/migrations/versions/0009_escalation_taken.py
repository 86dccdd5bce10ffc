"""an exhausted escalation taken in hand by a supervisor

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('escalations') as batch:
        batch.add_column(sa.Column('taken_by', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('taken_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('escalations') as batch:
        batch.drop_column('taken_at')
        batch.drop_column('taken_by')
