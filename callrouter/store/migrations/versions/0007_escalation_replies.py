"""escalation replies: practitioners' SMS answers as read, and what a step's channel reported

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('escalation_replies',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('escalation_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sender', sa.String(length=32), nullable=False),
    sa.Column('practitioner', sa.String(length=64), nullable=True),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('understood', sa.String(length=16), nullable=False),
    sa.Column('reference', sa.String(length=16), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['escalation_id'], ['escalations.id'],
                            name=op.f('fk_escalation_replies_escalation_id_escalations'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_replies'))
    )
    op.create_index(op.f('ix_escalation_replies_escalation_id'), 'escalation_replies', ['escalation_id'],
                    unique=False)
    with op.batch_alter_table('escalation_steps') as batch:
        batch.add_column(sa.Column('outcome', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('escalation_steps') as batch:
        batch.drop_column('outcome')
    op.drop_index(op.f('ix_escalation_replies_escalation_id'), table_name='escalation_replies')
    op.drop_table('escalation_replies')
