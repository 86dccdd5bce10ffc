"""the node whose controller places a callback task's call under way: a restart releases only its
own node's attempts, and a survivor those of a node lost (callrouter.store.reaping)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('callback_tasks') as batch:
        batch.add_column(sa.Column('attempt_node', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('callback_tasks') as batch:
        batch.drop_column('attempt_node')
