"""escalation chains and their outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('escalations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.String(length=64), nullable=True),
    sa.Column('practice', sa.String(length=64), nullable=False),
    sa.Column('tier', sa.String(length=64), nullable=False),
    sa.Column('caller', sa.String(length=32), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=64), nullable=True),
    sa.Column('acknowledged_via', sa.String(length=32), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dialplan_version', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalations'))
    )
    op.create_index(op.f('ix_escalations_call_id'), 'escalations', ['call_id'], unique=False)
    op.create_index('ix_escalations_state', 'escalations', ['state'], unique=False)
    op.create_index('ix_escalations_practice_started_at', 'escalations', ['practice', 'started_at'],
                    unique=False)
    op.create_table('escalation_steps',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('escalation_id', sa.Integer(), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('practitioner', sa.String(length=64), nullable=True),
    sa.Column('destination', sa.String(length=200), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['escalation_id'], ['escalations.id'],
                            name=op.f('fk_escalation_steps_escalation_id_escalations'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_steps')),
    sa.UniqueConstraint('escalation_id', 'round', 'step', name='uq_escalation_steps_key')
    )
    op.create_index('ix_escalation_steps_destination', 'escalation_steps', ['destination'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_escalation_steps_destination', table_name='escalation_steps')
    op.drop_table('escalation_steps')
    op.drop_index('ix_escalations_practice_started_at', table_name='escalations')
    op.drop_index('ix_escalations_state', table_name='escalations')
    op.drop_index(op.f('ix_escalations_call_id'), table_name='escalations')
    op.drop_table('escalations')
