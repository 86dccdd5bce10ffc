"""callback tasks: patients to call back, from overflow, voicemail or a secretary

Revision ID: 0004
Revises: 0005 (0005 was applied before this one was written: the history runs 0003, 0005, 0004)
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('callback_tasks',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('practice', sa.String(length=64), nullable=False),
    sa.Column('queue', sa.String(length=64), nullable=True),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('call_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=True),
    sa.Column('place_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('assigned_to', sa.String(length=200), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('attempt_leg', sa.String(length=64), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_call_id', sa.String(length=64), nullable=True),
    sa.Column('done_leg', sa.String(length=64), nullable=True),
    sa.Column('cancelled_by', sa.String(length=200), nullable=True),
    sa.Column('cancel_reason', sa.String(length=200), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_tasks'))
    )
    op.create_index(op.f('ix_callback_tasks_call_id'), 'callback_tasks', ['call_id'], unique=False)
    op.create_index('ix_callback_tasks_practice_state', 'callback_tasks', ['practice', 'state'],
                    unique=False)
    op.create_index('ix_callback_tasks_state_expires_at', 'callback_tasks', ['state', 'expires_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_callback_tasks_state_expires_at', table_name='callback_tasks')
    op.drop_index('ix_callback_tasks_practice_state', table_name='callback_tasks')
    op.drop_index(op.f('ix_callback_tasks_call_id'), table_name='callback_tasks')
    op.drop_table('callback_tasks')
