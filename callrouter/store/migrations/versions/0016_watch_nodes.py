"""the forwarding watch on several nodes: one run under way per number (a partial unique index),
and the call back of an attempt as another node saw it

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

CALLING = sa.text("state = 'calling'")


def upgrade() -> None:
    with op.batch_alter_table('watch_attempts') as batch:
        batch.add_column(sa.Column('returned_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('returned_node', sa.String(length=64), nullable=True))
    # Before the index: of runs left `calling` on one number (nodes that never restarted), the newest stays.
    op.execute("UPDATE watch_runs SET state = 'interrupted' WHERE state = 'calling' AND id NOT IN "
               "(SELECT MAX(id) FROM watch_runs WHERE state = 'calling' GROUP BY number)")
    op.create_index('uq_watch_runs_number_calling', 'watch_runs', ['number'], unique=True,
                    sqlite_where=CALLING, postgresql_where=CALLING)


def downgrade() -> None:
    op.drop_index('uq_watch_runs_number_calling', table_name='watch_runs')
    with op.batch_alter_table('watch_attempts') as batch:
        batch.drop_column('returned_node')
        batch.drop_column('returned_at')
