"""the team in the database: coverage, skill levels, pause reasons; secretaries' state history

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('team_secretaries',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_secretaries'))
    )
    op.create_table('team_coverage',
    sa.Column('secretary', sa.String(length=200), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['secretary'], ['team_secretaries.id'],
                            name=op.f('fk_team_coverage_secretary_team_secretaries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('secretary', 'key', name=op.f('pk_team_coverage'))
    )
    op.create_table('team_levels',
    sa.Column('secretary', sa.String(length=200), nullable=False),
    sa.Column('practice', sa.String(length=64), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['secretary'], ['team_secretaries.id'],
                            name=op.f('fk_team_levels_secretary_team_secretaries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('secretary', 'practice', name=op.f('pk_team_levels'))
    )
    op.create_table('pause_reasons',
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('position', name=op.f('pk_pause_reasons')),
    sa.UniqueConstraint('reason', name=op.f('uq_pause_reasons_reason'))
    )
    op.create_table('team_version',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('seeded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_version'))
    )
    op.create_table('secretary_state_changes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('secretary', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=80), nullable=True),
    sa.Column('by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_secretary_state_changes'))
    )
    op.create_index(op.f('ix_secretary_state_changes_at'), 'secretary_state_changes', ['at'], unique=False)
    op.create_index(op.f('ix_secretary_state_changes_secretary'), 'secretary_state_changes', ['secretary'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_secretary_state_changes_secretary'), table_name='secretary_state_changes')
    op.drop_index(op.f('ix_secretary_state_changes_at'), table_name='secretary_state_changes')
    op.drop_table('secretary_state_changes')
    op.drop_table('team_version')
    op.drop_table('pause_reasons')
    op.drop_table('team_levels')
    op.drop_table('team_coverage')
    op.drop_table('team_secretaries')
