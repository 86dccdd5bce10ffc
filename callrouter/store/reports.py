"""The weekly reports' outbox (callrouter.reports.weekly runs it): one row per (practice, ISO
week), the unique key that makes a report go at most once whatever the nodes and restarts.

- `claim` inserts the row as `sending` before anything is sent; a second claim of the same week,
  by this node or another, finds the key taken and sends nothing.
- `sent`, `failed` (the relay refused it, or was not reached: nothing left) and `unknown` (cut
  short where the relay may have taken it) end the attempt. `reclaim_failed` takes a failed row
  back for another attempt, once, under the same kind of guarded update.
- `mark_interrupted_sends`, at start-up: rows this node left `sending` when it stopped become
  `unknown` and are never sent again by themselves (the mail may have left before the stop).

Blocking, one transaction per call: run from a thread pool.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from callrouter.store.db import Database
from callrouter.store.models import ReportDelivery

SENDING, SENT, FAILED, UNKNOWN = "sending", "sent", "failed", "unknown"
STATES = (SENDING, SENT, FAILED, UNKNOWN)


@dataclass(frozen=True)
class DeliveryView:
    practice: str
    iso_year: int
    iso_week: int
    recipients: tuple[str, ...]
    state: str
    node: str
    attempts: int
    created_at: dt.datetime
    claimed_at: dt.datetime
    sent_at: dt.datetime | None
    message_id: str | None
    error: str | None

    def to_json(self) -> dict:
        return {"practice": self.practice, "week": f"{self.iso_year}-W{self.iso_week:02d}",
                "recipients": list(self.recipients), "state": self.state, "node": self.node,
                "attempts": self.attempts, "created_at": self.created_at.isoformat(),
                "sent_at": self.sent_at.isoformat() if self.sent_at else None, "error": self.error}


class ReportOutbox:
    def __init__(self, db: Database, node: str = "local") -> None:
        self._db = db
        self._node = node

    def claim(self, practice: str, year: int, week: int, recipients: tuple[str, ...], now: dt.datetime) -> bool:
        """Insert the week's row as `sending` for this node; False when the week has one already."""
        try:
            with self._db.transaction() as s:
                if s.scalar(select(ReportDelivery.id).where(*_key(practice, year, week))) is not None:
                    return False
                s.add(ReportDelivery(practice=practice, iso_year=year, iso_week=week,
                                     recipients=",".join(recipients)[:1000], state=SENDING, node=self._node,
                                     attempts=1, created_at=now, claimed_at=now))
            return True
        except IntegrityError:  # another node or thread inserted it between our check and insert
            return False

    def reclaim_failed(self, practice: str, year: int, week: int, recipients: tuple[str, ...], now: dt.datetime,
                       failed_before: dt.datetime, max_attempts: int) -> bool:
        """A `failed` row (last claimed before `failed_before`, fewer than `max_attempts`) back
        to `sending` for this node; False when there is none or another claim won."""
        with self._db.transaction() as s:
            row = s.execute(select(ReportDelivery.id, ReportDelivery.attempts).where(
                *_key(practice, year, week), ReportDelivery.state == FAILED,
                ReportDelivery.claimed_at < failed_before, ReportDelivery.attempts < max_attempts)).first()
            if row is None:
                return False
            result = s.execute(update(ReportDelivery).where(
                ReportDelivery.id == row.id, ReportDelivery.state == FAILED, ReportDelivery.attempts == row.attempts)
                .values(state=SENDING, node=self._node, attempts=row.attempts + 1, claimed_at=now,
                        recipients=",".join(recipients)[:1000]))
            return result.rowcount > 0

    def mark_sent(self, practice: str, year: int, week: int, message_id: str | None, now: dt.datetime) -> None:
        self._set(practice, year, week, state=SENT, message_id=message_id, sent_at=now, error=None)

    def mark_failed(self, practice: str, year: int, week: int, error: str) -> None:
        self._set(practice, year, week, state=FAILED, error=error[:500])

    def mark_unknown(self, practice: str, year: int, week: int, error: str) -> None:
        self._set(practice, year, week, state=UNKNOWN, error=error[:500])

    def mark_interrupted_sends(self) -> int:
        """At start-up: this node's rows left `sending` become `unknown` (never re-sent). Other
        nodes' rows are theirs: they may be sending right now."""
        with self._db.transaction() as s:
            result = s.execute(update(ReportDelivery)
                               .where(ReportDelivery.state == SENDING, ReportDelivery.node == self._node)
                               .values(state=UNKNOWN, error="interrupted by a restart; not re-sent"))
            return result.rowcount

    def get(self, practice: str, year: int, week: int) -> DeliveryView | None:
        with self._db.transaction() as s:
            row = s.scalar(select(ReportDelivery).where(*_key(practice, year, week)))
            return None if row is None else _view(row)

    def deliveries(self, practice: str | None = None, limit: int = 100) -> list[DeliveryView]:
        """The latest weeks first."""
        with self._db.transaction() as s:
            stmt = select(ReportDelivery)
            if practice is not None:
                stmt = stmt.where(ReportDelivery.practice == practice)
            stmt = stmt.order_by(ReportDelivery.iso_year.desc(), ReportDelivery.iso_week.desc(),
                                 ReportDelivery.practice).limit(limit)
            return [_view(r) for r in s.scalars(stmt)]

    def _set(self, practice: str, year: int, week: int, **values) -> None:
        with self._db.transaction() as s:
            s.execute(update(ReportDelivery).where(*_key(practice, year, week), ReportDelivery.state == SENDING)
                      .values(**values))


def _key(practice: str, year: int, week: int) -> tuple:
    return (ReportDelivery.practice == practice, ReportDelivery.iso_year == year, ReportDelivery.iso_week == week)


def _view(r: ReportDelivery) -> DeliveryView:
    return DeliveryView(r.practice, r.iso_year, r.iso_week, tuple(x for x in r.recipients.split(",") if x),
                        r.state, r.node, r.attempts, r.created_at, r.claimed_at, r.sent_at, r.message_id, r.error)
