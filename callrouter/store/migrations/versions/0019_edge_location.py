"""Kamailio's registrations table (usrloc's `location`, Kamailio 5.6's layout, version 9) and its
`version` table: with sip.registrations: database every node's edge shares the softphones'
registrations through them

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from alembic import op
import sqlalchemy as sa

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('version',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('table_name', sa.String(length=32), nullable=False),
    sa.Column('table_version', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_version')),
    sa.UniqueConstraint('table_name', name='version_table_name_idx'),
    )
    op.create_table('location',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ruid', sa.String(length=64), server_default=sa.text("''"), nullable=False),
    sa.Column('username', sa.String(length=64), server_default=sa.text("''"), nullable=False),
    sa.Column('domain', sa.String(length=64), nullable=True),
    sa.Column('contact', sa.String(length=512), server_default=sa.text("''"), nullable=False),
    sa.Column('received', sa.String(length=128), nullable=True),
    sa.Column('path', sa.String(length=512), nullable=True),
    sa.Column('expires', sa.DateTime(), server_default=sa.text("'2030-05-28 21:32:15'"), nullable=False),
    sa.Column('q', sa.REAL(), server_default=sa.text('1.0'), nullable=False),
    sa.Column('callid', sa.String(length=255), server_default=sa.text("'Default-Call-ID'"), nullable=False),
    sa.Column('cseq', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('last_modified', sa.DateTime(), server_default=sa.text("'2000-01-01 00:00:01'"), nullable=False),
    sa.Column('flags', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('cflags', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('user_agent', sa.String(length=255), server_default=sa.text("''"), nullable=False),
    sa.Column('socket', sa.String(length=64), nullable=True),
    sa.Column('methods', sa.Integer(), nullable=True),
    sa.Column('instance', sa.String(length=255), nullable=True),
    sa.Column('reg_id', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('server_id', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('connection_id', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('keepalive', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('partition', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_location')),
    sa.UniqueConstraint('ruid', name='location_ruid_idx'),
    )
    op.create_index('location_account_contact_idx', 'location', ['username', 'domain', 'contact'])
    op.create_index('location_expires_idx', 'location', ['expires'])
    op.create_index('location_tcpcon_idx', 'location', ['connection_id'])
    op.create_index('location_connection_idx', 'location', ['server_id', 'connection_id'])
    op.bulk_insert(sa.table('version', sa.column('table_name', sa.String), sa.column('table_version', sa.Integer)),
                   [{'table_name': 'version', 'table_version': 1},
                    {'table_name': 'location', 'table_version': 9}])


def downgrade() -> None:
    op.drop_index('location_connection_idx', table_name='location')
    op.drop_index('location_tcpcon_idx', table_name='location')
    op.drop_index('location_expires_idx', table_name='location')
    op.drop_index('location_account_contact_idx', table_name='location')
    op.drop_table('location')
    op.drop_table('version')
