"""the waiting calls a claim's check read (desk_offers.seen): the serving order across nodes holds
over the rows a claim saw, and this says which they were (docs/operations.md, "One team served by
several nodes")

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08
"""

from alembic import op
import sqlalchemy as sa

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('desk_offers') as batch:
        batch.add_column(sa.Column('seen', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('desk_offers') as batch:
        batch.drop_column('seen')
