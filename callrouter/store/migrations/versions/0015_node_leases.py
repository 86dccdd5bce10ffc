"""node leases and leads: a row per node (epoch, expiry on the database's clock) and a row per role
led by one node at a time (the escalation engine)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('node_leases',
    sa.Column('node_id', sa.String(length=64), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('renewed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('node_id', name=op.f('pk_node_leases'))
    )
    op.create_table('cluster_leads',
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('node_id', sa.String(length=64), nullable=True),
    sa.Column('node_epoch', sa.Integer(), nullable=True),
    sa.Column('term', sa.Integer(), nullable=False),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('role', name=op.f('pk_cluster_leads'))
    )


def downgrade() -> None:
    op.drop_table('cluster_leads')
    op.drop_table('node_leases')
