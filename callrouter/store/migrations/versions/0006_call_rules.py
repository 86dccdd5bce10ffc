"""call records explain themselves: the dialplan version in force and the decision's reasons

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calls') as batch:
        batch.add_column(sa.Column('dialplan_version', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('why', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('calls') as batch:
        batch.drop_column('why')
        batch.drop_column('dialplan_version')
