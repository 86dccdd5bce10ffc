"""call recording and voicemail: what each call record says about recording, the recordings and
their evaluation notes, the supervisors' on-demand requests, and the voicemail messages (the rows of
the old `recordings` table moved there, their plain files sealed into the vault at the next start)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('call_recordings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.String(length=64), nullable=False),
    sa.Column('practice', sa.String(length=64), nullable=False),
    sa.Column('secretary', sa.String(length=200), nullable=True),
    sa.Column('file', sa.String(length=80), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('channels', sa.Integer(), nullable=False),
    sa.Column('duration_seconds', sa.Float(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_recordings')),
    sa.UniqueConstraint('call_id', name=op.f('uq_call_recordings_call_id')),
    sa.UniqueConstraint('file', name=op.f('uq_call_recordings_file'))
    )
    op.create_index('ix_call_recordings_created_at', 'call_recordings', ['created_at'], unique=False)
    op.create_index('ix_call_recordings_practice_created_at', 'call_recordings', ['practice', 'created_at'], unique=False)
    op.create_table('recording_demands',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('secretary', sa.String(length=200), nullable=False),
    sa.Column('practice', sa.String(length=64), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stopped_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recording_demands'))
    )
    op.create_index('ix_recording_demands_ends_at', 'recording_demands', ['ends_at'], unique=False)
    op.create_table('voicemails',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.String(length=64), nullable=False),
    sa.Column('practice', sa.String(length=64), nullable=False),
    sa.Column('task_id', sa.String(length=64), nullable=True),
    sa.Column('file', sa.String(length=80), nullable=True),
    sa.Column('legacy_path', sa.String(length=500), nullable=True),
    sa.Column('key_id', sa.String(length=16), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('size_bytes', sa.Integer(), nullable=True),
    sa.Column('duration_seconds', sa.Float(), nullable=True),
    sa.Column('truncated', sa.Boolean(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notify', sa.String(length=16), nullable=False),
    sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voicemails')),
    sa.UniqueConstraint('file', name=op.f('uq_voicemails_file'))
    )
    op.create_index('ix_voicemails_call_id', 'voicemails', ['call_id'], unique=False)
    op.create_index('ix_voicemails_created_at', 'voicemails', ['created_at'], unique=False)
    op.create_index('ix_voicemails_notify', 'voicemails', ['notify'], unique=False)
    op.create_index('ix_voicemails_practice_created_at', 'voicemails', ['practice', 'created_at'], unique=False)
    op.create_table('call_recording_status',
    sa.Column('call_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_call_recording_status_call_id_calls'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('call_id', name=op.f('pk_call_recording_status'))
    )
    op.create_table('recording_notes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=True),
    sa.Column('call_id', sa.String(length=64), nullable=False),
    sa.Column('practice', sa.String(length=64), nullable=False),
    sa.Column('secretary', sa.String(length=200), nullable=True),
    sa.Column('author', sa.String(length=64), nullable=False),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['recording_id'], ['call_recordings.id'], name=op.f('fk_recording_notes_recording_id_call_recordings'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recording_notes')),
    sa.UniqueConstraint('recording_id', name=op.f('uq_recording_notes_recording_id'))
    )
    op.create_index('ix_recording_notes_created_at', 'recording_notes', ['created_at'], unique=False)
    # The voicemail messages stored so far (plain WAV files named by path) become messages to seal.
    op.execute(
        "INSERT INTO voicemails (call_id, practice, task_id, file, legacy_path, key_id, sha256, size_bytes, "
        "duration_seconds, truncated, started_at, created_at, notify, notified_at) "
        "SELECT r.call_id, COALESCE((SELECT c.practice FROM calls c WHERE c.id = r.call_id), ''), NULL, NULL, "
        "r.location, NULL, NULL, NULL, r.duration_seconds, false, r.started_at, r.created_at, 'none', NULL "
        "FROM recordings r ORDER BY r.id")
    op.execute("DELETE FROM recordings")


def downgrade() -> None:
    # Messages not sealed yet go back to the old table; sealed ones cannot be (their audio is
    # encrypted in the vault, which an older version does not read).
    op.execute(
        "INSERT INTO recordings (call_id, location, started_at, duration_seconds, created_at) "
        "SELECT call_id, legacy_path, started_at, duration_seconds, created_at FROM voicemails "
        "WHERE legacy_path IS NOT NULL AND file IS NULL ORDER BY id")
    op.drop_index('ix_recording_notes_created_at', table_name='recording_notes')
    op.drop_table('recording_notes')
    op.drop_table('call_recording_status')
    op.drop_index('ix_voicemails_practice_created_at', table_name='voicemails')
    op.drop_index('ix_voicemails_notify', table_name='voicemails')
    op.drop_index('ix_voicemails_created_at', table_name='voicemails')
    op.drop_index('ix_voicemails_call_id', table_name='voicemails')
    op.drop_table('voicemails')
    op.drop_index('ix_recording_demands_ends_at', table_name='recording_demands')
    op.drop_table('recording_demands')
    op.drop_index('ix_call_recordings_practice_created_at', table_name='call_recordings')
    op.drop_index('ix_call_recordings_created_at', table_name='call_recordings')
    op.drop_table('call_recordings')
