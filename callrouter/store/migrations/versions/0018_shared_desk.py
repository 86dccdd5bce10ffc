"""the shared desk of several nodes: the secretaries' logins and pauses, every node's waiting calls,
and the offers, at most one active per secretary (a unique partial index)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from alembic import op
import sqlalchemy as sa

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('desk_secretaries',
    sa.Column('secretary', sa.String(length=200), nullable=False),
    sa.Column('logged_in', sa.Boolean(), nullable=False),
    sa.Column('paused', sa.String(length=200), nullable=True),
    sa.Column('auto_paused', sa.Boolean(), nullable=False),
    sa.Column('missed', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('secretary', name=op.f('pk_desk_secretaries'))
    )
    op.create_table('desk_waiting',
    sa.Column('call_id', sa.String(length=64), nullable=False),
    sa.Column('node_id', sa.String(length=64), nullable=False),
    sa.Column('node_epoch', sa.Integer(), nullable=False),
    sa.Column('practice', sa.String(length=64), nullable=False),
    sa.Column('queue', sa.String(length=64), nullable=False),
    sa.Column('line', sa.String(length=200), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('enqueued_at', sa.Float(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('strategy', sa.String(length=32), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('tried', sa.Text(), nullable=False),
    sa.Column('offered', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('call_id', name=op.f('pk_desk_waiting'))
    )
    op.create_table('desk_offers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=64), nullable=False),
    sa.Column('secretary', sa.String(length=200), nullable=False),
    sa.Column('node_id', sa.String(length=64), nullable=False),
    sa.Column('node_epoch', sa.Integer(), nullable=False),
    sa.Column('offered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_offers'))
    )
    op.create_index('ix_desk_offers_call_id', 'desk_offers', ['call_id'])
    op.create_index('ix_desk_offers_secretary_ended_at', 'desk_offers', ['secretary', 'ended_at'])
    op.create_index('ix_desk_offers_active_secretary', 'desk_offers', ['secretary'], unique=True,
                    postgresql_where=sa.text('ended_at IS NULL'), sqlite_where=sa.text('ended_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_desk_offers_active_secretary', table_name='desk_offers')
    op.drop_index('ix_desk_offers_secretary_ended_at', table_name='desk_offers')
    op.drop_index('ix_desk_offers_call_id', table_name='desk_offers')
    op.drop_table('desk_offers')
    op.drop_table('desk_waiting')
    op.drop_table('desk_secretaries')
