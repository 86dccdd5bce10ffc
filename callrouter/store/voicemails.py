"""Voicemail messages in the store: each message's encrypted file (its name in the media vault,
never the audio), the callback task it created, and the e-mail telling the practice.

Listed per practice with their task (the number to call back, its state, who took it), each list
traced; a listening audited before the audio leaves (`access`). Messages stored before they were
encrypted (`legacy_path`, moved here from the old `recordings` table by migration 0014) are sealed
at start (`legacy` then `sealed`). Retention is `purge`, inside the daily purge's transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import delete, func, select, update

from callrouter.domain.recording import UnknownRecording, VoicemailView, retention_cutoff
from callrouter.ports import Actor
from callrouter.store.audit import append, trace_read
from callrouter.store.db import Database
from callrouter.store.models import CallbackTask, VoicemailMessage

logger = logging.getLogger(__name__)

NOTIFY_STATES = ("none", "pending", "sending", "sent", "failed")


def _view(v: VoicemailMessage, task: CallbackTask | None) -> VoicemailView:
    return VoicemailView(v.id, v.call_id, v.practice, v.file, v.sha256, v.size_bytes, v.duration_seconds,
                         bool(v.truncated), v.started_at, v.created_at, v.task_id,
                         task.number if task else None, task.state if task else None,
                         task.assigned_to if task else None)


class VoicemailRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, call_id: str, practice: str, task_id: str | None, file: str, key_id: str, sha256: str,
            size_bytes: int, duration_seconds: float, truncated: bool, started_at: dt.datetime, now: dt.datetime,
            notify: bool) -> int:
        with self._db.transaction() as s:
            row = VoicemailMessage(call_id=call_id, practice=practice, task_id=task_id, file=file, key_id=key_id,
                                   sha256=sha256, size_bytes=size_bytes, duration_seconds=duration_seconds,
                                   truncated=truncated, started_at=started_at, created_at=now,
                                   notify="pending" if notify else "none")
            s.add(row)
            s.flush()
            return row.id

    def read_list(self, practice: str, limit: int, reader: Actor, now: dt.datetime, filters: dict,
                  open_only: bool = False) -> list[VoicemailView]:
        """A practice's messages, newest first, with their callback task; the read traced.
        `open_only`: only those whose task is still to do (or that have none)."""
        with self._db.transaction() as s:
            q = (select(VoicemailMessage, CallbackTask).outerjoin(CallbackTask, CallbackTask.id == VoicemailMessage.task_id)
                 .where(VoicemailMessage.practice == practice))
            if open_only:
                q = q.where((CallbackTask.id.is_(None)) | CallbackTask.state.in_(("open", "assigned", "calling")))
            rows = list(s.execute(q.order_by(VoicemailMessage.created_at.desc(), VoicemailMessage.id.desc())
                                  .limit(limit)))
            trace_read(s, reader, "voicemails.read", f"practice:{practice}", now, len(rows), filters)
            return [_view(v, t) for v, t in rows]

    def get(self, message_id: int) -> VoicemailView:
        with self._db.transaction() as s:
            row = s.get(VoicemailMessage, message_id)
            if row is None:
                raise UnknownRecording(message_id)
            return _view(row, s.get(CallbackTask, row.task_id) if row.task_id else None)

    def access(self, message_id: int, practices: frozenset[str] | None, reader: Actor,
               now: dt.datetime) -> VoicemailView:
        """The message to hear, audited before it is served. UnknownRecording for one missing, of a
        practice outside `practices`, or not sealed yet."""
        with self._db.transaction() as s:
            row = s.get(VoicemailMessage, message_id)
            if row is None or row.file is None or (practices is not None and row.practice not in practices):
                raise UnknownRecording(message_id)
            append(s, reader, "voicemail.listen", f"voicemail:{row.id}", now,
                   details={"call": row.call_id, "practice": row.practice, "task": row.task_id,
                            "sha256": row.sha256})
            return _view(row, s.get(CallbackTask, row.task_id) if row.task_id else None)

    # --- messages written before encryption ---------------------------------------------------------

    def legacy(self) -> list[tuple[int, str, str]]:
        """(id, plain file path, call id) of every message still to seal."""
        with self._db.transaction() as s:
            return [(r.id, r.legacy_path, r.call_id) for r in s.scalars(
                select(VoicemailMessage).where(VoicemailMessage.legacy_path.is_not(None),
                                               VoicemailMessage.file.is_(None)).order_by(VoicemailMessage.id))]

    def sealed(self, message_id: int, file: str | None, key_id: str | None, sha256: str | None,
               size_bytes: int | None, actor: Actor, now: dt.datetime) -> None:
        """A legacy message sealed into the vault (or, `file` None, its plain file found missing)."""
        with self._db.transaction() as s:
            row = s.get(VoicemailMessage, message_id, with_for_update=True)
            if row is None:
                return
            row.file, row.key_id, row.sha256, row.size_bytes, row.legacy_path = file, key_id, sha256, size_bytes, None
            append(s, actor, "voicemail.sealed" if file else "voicemail.lost", f"voicemail:{row.id}", now,
                   details={"call": row.call_id})

    # --- the practice's e-mail -------------------------------------------------------------------------

    def claim_notifications(self, limit: int = 20) -> list[VoicemailView]:
        """Messages whose e-mail is due, claimed (`sending`) so that no other node sends them."""
        with self._db.transaction() as s:
            rows = list(s.scalars(select(VoicemailMessage).where(VoicemailMessage.notify == "pending")
                                  .order_by(VoicemailMessage.id).limit(limit).with_for_update(skip_locked=True)))
            for row in rows:
                row.notify = "sending"
            return [_view(r, None) for r in rows]

    def notified(self, message_id: int, sent: bool, now: dt.datetime) -> None:
        with self._db.transaction() as s:
            s.execute(update(VoicemailMessage).where(VoicemailMessage.id == message_id,
                                                     VoicemailMessage.notify == "sending")
                      .values(notify="sent" if sent else "failed", notified_at=now))

    def release_sending(self) -> int:
        """At start: e-mails a stop cut short are not sent again (the relay may have taken them)."""
        with self._db.transaction() as s:
            return s.execute(update(VoicemailMessage).where(VoicemailMessage.notify == "sending")
                             .values(notify="failed")).rowcount

    def files(self) -> set[str]:
        with self._db.transaction() as s:
            return {f for f in s.scalars(select(VoicemailMessage.file)) if f}

    def count(self) -> int:
        with self._db.transaction() as s:
            return s.scalar(select(func.count()).select_from(VoicemailMessage)
                            .where(VoicemailMessage.file.is_not(None))) or 0


def purge(s, now: dt.datetime, days: int | None) -> tuple[dict[str, Any], list[str]]:
    """Inside the retention purge's transaction: messages older than `days`; the names of their
    files (removed once committed). Their callback tasks follow the call records' retention."""
    cut = retention_cutoff(now, days)
    if cut is None:
        return {"voicemails": 0, "cutoff": None}, []
    rows = list(s.execute(select(VoicemailMessage.id, VoicemailMessage.file, VoicemailMessage.legacy_path)
                          .where(VoicemailMessage.created_at < cut)))
    if rows:
        s.execute(delete(VoicemailMessage).where(VoicemailMessage.id.in_([r.id for r in rows])))
    files = [r.file for r in rows if r.file] + [r.legacy_path for r in rows if r.legacy_path and not r.file]
    return {"voicemails": len(rows), "cutoff": cut.isoformat()}, files
