"""Models of call recording and voicemail (docs/recording.md): what each call's record says about
recording, the recordings and their evaluation notes, the supervisors' on-demand requests, and the
voicemail messages. Re-exported by callrouter.store.models, whose metadata they share (see
callrouter.store.recordings and callrouter.store.voicemails).

The audio itself is never in the database: `file` names an encrypted file in the media vault
(`recording.vault_dir`), never a path, and every row that names a file is deleted with it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from callrouter.store.base import Base, UtcDateTime


class CallRecordingStatus(Base):
    """What the call record says about recording: recorded | refused | not_selected | failed, and
    why (the policy's draw, the key pressed, « le patient refuse » and who clicked it). Goes with
    its call."""

    __tablename__ = "call_recording_status"

    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    # Read with its call (CallRecord.recording_status, loaded with every record read), never written through it.
    call = relationship("CallRecord", viewonly=True,
                        backref=backref("recording_status", uselist=False, lazy="selectin", viewonly=True))


class CallRecordingFile(Base):
    """A recorded conversation (the caller on the left channel, the secretary on the right).
    Purged with its file when older than `recording.keep_days`."""

    __tablename__ = "call_recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64))
    practice: Mapped[str] = mapped_column(String(64))
    secretary: Mapped[str | None] = mapped_column(String(200))
    file: Mapped[str] = mapped_column(String(80))
    key_id: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    duration_seconds: Mapped[float] = mapped_column(Float)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    reason: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("call_id"),
        UniqueConstraint("file"),
        Index("ix_call_recordings_practice_created_at", "practice", "created_at"),
        Index("ix_call_recordings_created_at", "created_at"),
    )


class RecordingNote(Base):
    """A supervisor's evaluation of one recording, kept longer than the recording itself
    (`recording.notes_days`): when the recording is purged the note stays, its link cleared."""

    __tablename__ = "recording_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("call_recordings.id", ondelete="SET NULL"))
    call_id: Mapped[str] = mapped_column(String(64))
    practice: Mapped[str] = mapped_column(String(64))
    secretary: Mapped[str | None] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(64))
    score: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        UniqueConstraint("recording_id"),
        Index("ix_recording_notes_created_at", "created_at"),
    )


class RecordingDemand(Base):
    """A supervisor's request to record the calls a secretary answers (for a practice, or any)
    from `starts_at` until `ends_at` or until stopped."""

    __tablename__ = "recording_demands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    secretary: Mapped[str] = mapped_column(String(200))
    practice: Mapped[str | None] = mapped_column(String(64))
    starts_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    stopped_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    stopped_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_recording_demands_ends_at", "ends_at"),)


class VoicemailMessage(Base):
    """A message left on a practice's voicemail: its encrypted file, the callback task it created,
    and the e-mail telling the practice (notify: none | pending | sent | failed). `legacy_path`
    is a plain file written before messages were encrypted, sealed into the vault at start."""

    __tablename__ = "voicemails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64))
    practice: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str | None] = mapped_column(String(64))
    file: Mapped[str | None] = mapped_column(String(80))
    legacy_path: Mapped[str | None] = mapped_column(String(500))
    key_id: Mapped[str | None] = mapped_column(String(16))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    notify: Mapped[str] = mapped_column(String(16))
    notified_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        UniqueConstraint("file"),
        Index("ix_voicemails_practice_created_at", "practice", "created_at"),
        Index("ix_voicemails_created_at", "created_at"),
        Index("ix_voicemails_call_id", "call_id"),
        Index("ix_voicemails_notify", "notify"),
    )
