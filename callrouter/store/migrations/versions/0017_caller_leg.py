"""the media worker's leg of a call's caller: a controller started again while the media service
kept the calls finds each call record from the legs the workers report

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calls') as batch:
        batch.add_column(sa.Column('caller_leg', sa.String(length=64), nullable=True))
    op.create_index('ix_calls_caller_leg', 'calls', ['caller_leg'])


def downgrade() -> None:
    op.drop_index('ix_calls_caller_leg', table_name='calls')
    with op.batch_alter_table('calls') as batch:
        batch.drop_column('caller_leg')
