"""Call recordings in the store: what each call record says about recording, the recordings (their
encrypted file's name, never the audio), the supervisors' evaluation notes, and the on-demand
requests (docs/recording.md).

Every method is one transaction. A listening or a download is audited before the audio leaves
(`access`): the entry and the read share the transaction, so no audio is served unrecorded. A
refusal (« le patient refuse ») and a deletion remove the row and hand back the file's name for
the vault to remove once committed. Retention is `purge`, run inside the daily purge's
transaction (callrouter.store.retention): recordings older than their limit, notes older than
theirs (a note outlives its recording, its link cleared).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from callrouter.domain.recording import (
    REFUSED, STATUSES, Demand, NoteView, RecordingView, UnknownRecording, retention_cutoff,
)
from callrouter.ports import Actor
from callrouter.store.audit import append, trace_read
from callrouter.store.db import Database
from callrouter.store.models import CallRecord, CallRecordingFile, CallRecordingStatus, RecordingDemand, RecordingNote

logger = logging.getLogger(__name__)

NOTE_MAX = 4000
LISTEN_ACTIONS = ("listen", "download")


def _note(n: RecordingNote) -> NoteView:
    return NoteView(n.id, n.recording_id, n.call_id, n.practice, n.secretary, n.author, n.score, n.text,
                    n.created_at, n.updated_at)


def _view(r: CallRecordingFile, note: RecordingNote | None = None) -> RecordingView:
    return RecordingView(r.id, r.call_id, r.practice, r.secretary, r.file, r.sha256, r.size_bytes, r.channels,
                         r.duration_seconds, r.started_at, r.created_at, r.reason, _note(note) if note else None)


def _demand(d: RecordingDemand) -> Demand:
    return Demand(d.id, d.secretary, d.practice, d.starts_at, d.stopped_at or d.ends_at, d.created_by)


class RecordingRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- the call record's status ------------------------------------------------------------------

    def set_status(self, call_id: str, status: str, reason: str | None, now: dt.datetime) -> None:
        """What the call's record says, replacing what it said; a refusal is final (a write of an
        earlier moment coming late never turns it back into "recorded")."""
        if status not in STATUSES:
            raise ValueError(f"unknown recording status {status!r}")
        with self._db.transaction() as s:
            row = s.get(CallRecordingStatus, call_id, with_for_update=True)
            if row is None:
                s.add(CallRecordingStatus(call_id=call_id, status=status, reason=(reason or "")[:200], at=now))
            elif row.status != REFUSED:
                row.status, row.reason, row.at = status, (reason or "")[:200], now

    def status_of(self, call_id: str) -> tuple[str, str | None] | None:
        with self._db.transaction() as s:
            row = s.get(CallRecordingStatus, call_id)
            return None if row is None else (row.status, row.reason)

    # --- recordings ----------------------------------------------------------------------------------

    def add(self, call_id: str, practice: str, secretary: str | None, file: str, key_id: str, sha256: str,
            size_bytes: int, channels: int, duration_seconds: float, started_at: dt.datetime, now: dt.datetime,
            reason: str | None = None) -> int | None:
        """Store a finished recording; None (nothing stored) when the call was refused meanwhile:
        the caller's file is then removed by whoever stored it."""
        with self._db.transaction() as s:
            status = s.get(CallRecordingStatus, call_id)
            if status is not None and status.status == REFUSED:
                return None
            row = CallRecordingFile(call_id=call_id, practice=practice, secretary=secretary, file=file, key_id=key_id,
                                    sha256=sha256, size_bytes=size_bytes, channels=channels,
                                    duration_seconds=duration_seconds, started_at=started_at, created_at=now,
                                    reason=(reason or "")[:200] or None)
            s.add(row)
            s.flush()
            return row.id

    def refuse(self, call_id: str, by: Actor, now: dt.datetime, reason: str) -> str | None:
        """« le patient refuse »: the call is marked refused and its recording row, if stored,
        deleted (audited); the file name to remove, or None."""
        with self._db.transaction() as s:
            row = s.scalars(select(CallRecordingFile).where(CallRecordingFile.call_id == call_id)
                            .with_for_update()).first()
            status = s.get(CallRecordingStatus, call_id)
            if status is None and s.get(CallRecord, call_id) is not None:  # else the call side writes it, in order
                s.add(CallRecordingStatus(call_id=call_id, status=REFUSED, reason=reason[:200], at=now))
            elif status is not None:
                status.status, status.reason, status.at = REFUSED, reason[:200], now
            file = row.file if row is not None else None
            if row is not None:
                s.delete(row)
            append(s, by, "recording.refused", f"call:{call_id}", now,
                   details={"deleted_recording": row.id if row is not None else None})
            return file

    def get(self, recording_id: int) -> RecordingView:
        with self._db.transaction() as s:
            row = s.get(CallRecordingFile, recording_id)
            if row is None:
                raise UnknownRecording(recording_id)
            return _view(row, self._note_of(s, row.id))

    def of_call(self, call_id: str) -> RecordingView | None:
        with self._db.transaction() as s:
            row = s.scalars(select(CallRecordingFile).where(CallRecordingFile.call_id == call_id)).first()
            return None if row is None else _view(row, self._note_of(s, row.id))

    def read_list(self, practice: str, since: dt.datetime | None, until: dt.datetime | None, limit: int,
                  reader: Actor, now: dt.datetime, filters: dict) -> list[RecordingView]:
        """A practice's recordings, newest first (no audio): the read traced."""
        with self._db.transaction() as s:
            q = select(CallRecordingFile).where(CallRecordingFile.practice == practice)
            if since is not None:
                q = q.where(CallRecordingFile.created_at >= since)
            if until is not None:
                q = q.where(CallRecordingFile.created_at < until)
            rows = list(s.scalars(q.order_by(CallRecordingFile.created_at.desc(), CallRecordingFile.id.desc())
                                  .limit(limit)))
            notes = {n.recording_id: n for n in s.scalars(select(RecordingNote).where(
                RecordingNote.recording_id.in_([r.id for r in rows])))} if rows else {}
            trace_read(s, reader, "recordings.read", f"practice:{practice}", now, len(rows), filters)
            return [_view(r, notes.get(r.id)) for r in rows]

    def access(self, recording_id: int, practices: frozenset[str] | None, reader: Actor, now: dt.datetime,
               action: str) -> RecordingView:
        """The recording to hear (`listen`) or to download: audited before it is served.
        UnknownRecording for one that is missing or of a practice outside `practices`."""
        if action not in LISTEN_ACTIONS:
            raise ValueError(f"unknown access {action!r}")
        with self._db.transaction() as s:
            row = s.get(CallRecordingFile, recording_id)
            if row is None or (practices is not None and row.practice not in practices):
                raise UnknownRecording(recording_id)
            append(s, reader, f"recording.{action}", f"recording:{row.id}", now,
                   details={"call": row.call_id, "practice": row.practice, "sha256": row.sha256})
            return _view(row, self._note_of(s, row.id))

    def delete(self, recording_id: int, actor: Actor, now: dt.datetime, reason: str | None) -> str:
        """Delete a recording before its time (its note stays); the file name to remove."""
        with self._db.transaction() as s:
            row = s.get(CallRecordingFile, recording_id, with_for_update=True)
            if row is None:
                raise UnknownRecording(recording_id)
            file = row.file
            append(s, actor, "recording.deleted", f"recording:{row.id}", now,
                   details={"call": row.call_id, "practice": row.practice, "reason": reason})
            s.delete(row)
            return file

    # --- evaluation notes ------------------------------------------------------------------------------

    def put_note(self, recording_id: int, author: str, text: str, score: int | None, now: dt.datetime,
                 actor: Actor) -> NoteView:
        """The supervisor's evaluation of a recording (one per recording: written again, replaced)."""
        text = text.strip()[:NOTE_MAX]
        with self._db.transaction() as s:
            row = s.get(CallRecordingFile, recording_id)
            if row is None:
                raise UnknownRecording(recording_id)
            note = self._note_of(s, recording_id)
            before = None if note is None else {"score": note.score, "author": note.author}
            if note is None:
                note = RecordingNote(recording_id=recording_id, call_id=row.call_id, practice=row.practice,
                                     secretary=row.secretary, author=author, score=score, text=text,
                                     created_at=now, updated_at=now)
                s.add(note)
            else:
                note.author, note.score, note.text, note.updated_at = author, score, text, now
            s.flush()
            append(s, actor, "recording.note", f"recording:{recording_id}", now, before,
                   {"score": score, "author": author}, details={"characters": len(text)})
            return _note(note)

    @staticmethod
    def _note_of(s: Session, recording_id: int) -> RecordingNote | None:
        return s.scalars(select(RecordingNote).where(RecordingNote.recording_id == recording_id)).first()

    # --- on-demand requests ---------------------------------------------------------------------------

    def add_demand(self, secretary: str, practice: str | None, starts_at: dt.datetime, ends_at: dt.datetime,
                   actor: Actor, now: dt.datetime) -> Demand:
        with self._db.transaction() as s:
            row = RecordingDemand(secretary=secretary, practice=practice, starts_at=starts_at, ends_at=ends_at,
                                  created_by=actor.name, created_at=now)
            s.add(row)
            s.flush()
            append(s, actor, "recording.demand", f"secretary:{secretary}", now,
                   after={"practice": practice, "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()})
            return _demand(row)

    def stop_demand(self, demand_id: int, actor: Actor, now: dt.datetime) -> Demand:
        with self._db.transaction() as s:
            row = s.get(RecordingDemand, demand_id, with_for_update=True)
            if row is None:
                raise UnknownRecording(demand_id)
            if row.stopped_at is None and row.ends_at > now:
                row.stopped_at, row.stopped_by = now, actor.name
                append(s, actor, "recording.demand_stopped", f"secretary:{row.secretary}", now,
                       details={"demand": row.id})
            return _demand(row)

    def active_demands(self, now: dt.datetime) -> list[Demand]:
        """The requests not over yet (those starting later included), oldest first."""
        with self._db.transaction() as s:
            rows = s.scalars(select(RecordingDemand).where(RecordingDemand.ends_at > now,
                                                           RecordingDemand.stopped_at.is_(None))
                             .order_by(RecordingDemand.id))
            return [_demand(r) for r in rows]

    # --- retention ------------------------------------------------------------------------------------

    def files(self) -> set[str]:
        """Every vault file a recording row names (the vault's sweep keeps only these)."""
        with self._db.transaction() as s:
            return set(s.scalars(select(CallRecordingFile.file)))


def purge(s: Session, now: dt.datetime, keep_days: int | None, notes_days: int | None) -> tuple[dict[str, Any], list[str]]:
    """Inside the retention purge's transaction: recordings past `keep_days` (their files' names
    returned, removed once committed), notes past `notes_days`, requests over for as long."""
    counts: dict[str, Any] = {"call_recordings": 0, "recording_notes": 0}
    files: list[str] = []
    cut = retention_cutoff(now, keep_days)
    if cut is not None:
        rows = list(s.execute(select(CallRecordingFile.id, CallRecordingFile.file)
                              .where(CallRecordingFile.created_at < cut)))
        if rows:
            ids = [r.id for r in rows]
            files = [r.file for r in rows]
            # The notes outlive the recordings: their link is cleared here, on every database.
            s.execute(RecordingNote.__table__.update().where(RecordingNote.recording_id.in_(ids))
                      .values(recording_id=None))
            counts["call_recordings"] = s.execute(delete(CallRecordingFile)
                                                  .where(CallRecordingFile.id.in_(ids))).rowcount
    notes_cut = retention_cutoff(now, notes_days)
    if notes_cut is not None:
        counts["recording_notes"] = s.execute(delete(RecordingNote).where(RecordingNote.created_at < notes_cut)).rowcount
        s.execute(delete(RecordingDemand).where(RecordingDemand.ends_at < notes_cut))
    counts["cutoffs"] = {"call_recordings": None if cut is None else cut.isoformat(),
                         "recording_notes": None if notes_cut is None else notes_cut.isoformat()}
    return counts, files
