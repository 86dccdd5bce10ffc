"""the forwarding watch: its runs, their attempts and the outbox of the alerts a failure sends

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('watch_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('slot_key', sa.String(length=200), nullable=False),
    sa.Column('practice', sa.String(length=64), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('returns_on', sa.String(length=32), nullable=False),
    sa.Column('caller', sa.String(length=32), nullable=False),
    sa.Column('token', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.String(length=64), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('rtt_ms', sa.Integer(), nullable=True),
    sa.Column('planned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_watch_runs')),
    sa.UniqueConstraint('slot_key', name=op.f('uq_watch_runs_slot_key'))
    )
    op.create_index('ix_watch_runs_practice_started_at', 'watch_runs', ['practice', 'started_at'], unique=False)
    op.create_index('ix_watch_runs_state', 'watch_runs', ['state'], unique=False)
    op.create_table('watch_attempts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('sip_code', sa.Integer(), nullable=True),
    sa.Column('rang', sa.Boolean(), nullable=False),
    sa.Column('rtt_ms', sa.Integer(), nullable=True),
    sa.Column('name_kept', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['watch_runs.id'], name=op.f('fk_watch_attempts_run_id_watch_runs'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_watch_attempts')),
    sa.UniqueConstraint('run_id', 'n', name=op.f('uq_watch_attempts_run_id'))
    )
    op.create_index(op.f('ix_watch_attempts_run_id'), 'watch_attempts', ['run_id'], unique=False)
    op.create_table('watch_alerts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('destination', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('provider_id', sa.String(length=200), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['watch_runs.id'], name=op.f('fk_watch_alerts_run_id_watch_runs'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_watch_alerts')),
    sa.UniqueConstraint('run_id', 'channel', 'destination', name=op.f('uq_watch_alerts_run_id'))
    )
    op.create_index('ix_watch_alerts_state', 'watch_alerts', ['state'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_watch_alerts_state', table_name='watch_alerts')
    op.drop_table('watch_alerts')
    op.drop_index(op.f('ix_watch_attempts_run_id'), table_name='watch_attempts')
    op.drop_table('watch_attempts')
    op.drop_index('ix_watch_runs_state', table_name='watch_runs')
    op.drop_index('ix_watch_runs_practice_started_at', table_name='watch_runs')
    op.drop_table('watch_runs')
