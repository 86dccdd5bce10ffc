"""Escalation chains and their outbox: durable, so a restarted controller resumes every chain.

Each step is *claimed* (a row inserted in state `sending`, unique on (escalation, round, step))
before its message leaves; only the claimer sends it. A restart turns rows left in `sending` into
`unknown` (they may or may not have left) and never re-sends them: see callrouter.escalation.engine.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import statistics
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from callrouter.domain import escalation as chain
from callrouter.store.audit import Actor, append
from callrouter.store.db import Database
from callrouter.store.models import Escalation, EscalationStepRecord

logger = logging.getLogger(__name__)

ACTIVE, DONE = "active", "done"
STEP_STATES = ("sending", "sent", "delivered", "failed", "skipped", "unknown")
_RESULT = {"sent": chain.SENT, "delivered": chain.SENT, "failed": chain.FAILED,
           "skipped": chain.SKIPPED, "unknown": chain.UNKNOWN, "sending": chain.UNKNOWN}
CSV_COLUMNS = ("id", "call_id", "practice", "tier", "started_at", "outcome", "acknowledged_by",
               "acknowledged_via", "acknowledged_at", "ack_delay_seconds", "steps_sent",
               "steps_failed")


class UnknownEscalation(LookupError):
    pass


@dataclass(frozen=True)
class StepView:
    round: int
    step: int
    channel: str
    practitioner: str | None
    destination: str | None
    state: str
    attempts: int
    provider_id: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    error: str | None


@dataclass(frozen=True)
class EscalationView:
    id: int
    call_id: str | None
    practice: str
    tier: str
    caller: str | None
    started_at: dt.datetime
    state: str
    outcome: str | None
    ended_at: dt.datetime | None
    acknowledged_by: str | None
    acknowledged_via: str | None
    acknowledged_at: dt.datetime | None
    dialplan_version: str | None
    steps: tuple[StepView, ...]
    triggered_by: str | None = None  # "user:<name>" when started from the console, None: the IVR
    note: str | None = None          # the secretary's short note (e-mail only, never SMS)

    @property
    def ack_delay_s(self) -> float | None:
        if self.acknowledged_at is None:
            return None
        return (self.acknowledged_at - self.started_at).total_seconds()

    def chain_state(self) -> chain.ChainState:
        """The pure chain state this row stands for (what `next_step` reads)."""
        records = tuple(chain.StepRecord(s.round, s.step, _RESULT[s.state], s.sent_at or s.created_at)
                        for s in self.steps)
        return chain.ChainState(self.started_at, records, acknowledged=self.acknowledged_at is not None,
                                cancelled=self.outcome == chain.CANCELLED)

    def to_json(self, with_caller: bool = True) -> dict:
        return {
            "id": self.id, "call_id": self.call_id, "practice": self.practice, "tier": self.tier,
            "caller": self.caller if with_caller else None,
            "started_at": self.started_at.isoformat(), "state": self.state, "outcome": self.outcome,
            "ended_at": _iso(self.ended_at), "acknowledged_by": self.acknowledged_by,
            "acknowledged_via": self.acknowledged_via, "acknowledged_at": _iso(self.acknowledged_at),
            "ack_delay_seconds": self.ack_delay_s, "dialplan_version": self.dialplan_version,
            "triggered_by": self.triggered_by, "note": self.note,
            "steps": [{"round": s.round, "step": s.step, "channel": s.channel,
                       "practitioner": s.practitioner, "state": s.state, "attempts": s.attempts,
                       "created_at": s.created_at.isoformat(), "sent_at": _iso(s.sent_at),
                       "error": s.error} for s in self.steps],
        }


@dataclass(frozen=True)
class AckResult:
    accepted: bool  # False: someone acknowledged first (or no such chain)
    escalation: EscalationView


@dataclass(frozen=True)
class EscalationQuery:
    practices: frozenset[str] | None = None  # None: every practice
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    tier: str | None = None
    outcome: str | None = None
    limit: int = 100


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _view(e: Escalation) -> EscalationView:
    steps = tuple(StepView(s.round, s.step, s.channel, s.practitioner, s.destination, s.state,
                           s.attempts, s.provider_id, s.created_at, s.sent_at, s.error)
                  for s in sorted(e.steps, key=lambda s: (s.round, s.step)))
    return EscalationView(e.id, e.call_id, e.practice, e.tier, e.caller, e.started_at, e.state,
                          e.outcome, e.ended_at, e.acknowledged_by, e.acknowledged_via,
                          e.acknowledged_at, e.dialplan_version, steps, e.triggered_by, e.note)


class EscalationRepository:
    """Blocking: every method is one short transaction (run it from a thread pool)."""

    def __init__(self, db: Database, node: str = "local") -> None:
        self._db = db
        self._node = node

    def create(self, call_id: str | None, practice: str, tier: str, caller: str | None,
               now: dt.datetime, dialplan_version: str | None = None, triggered_by: str | None = None,
               note: str | None = None) -> EscalationView:
        with self._db.transaction() as s:
            row = Escalation(call_id=call_id, practice=practice, tier=tier, caller=caller,
                             started_at=now, state=ACTIVE, dialplan_version=dialplan_version,
                             triggered_by=triggered_by, note=note)
            s.add(row)
            s.flush()
            return _view(row)

    def get(self, escalation_id: int) -> EscalationView:
        with self._db.transaction() as s:
            row = s.get(Escalation, escalation_id)
            if row is None:
                raise UnknownEscalation(escalation_id)
            return _view(row)

    def claim_step(self, escalation_id: int, rnd: int, step: int, channel: str,
                   practitioner: str | None, destination: str | None, now: dt.datetime,
                   state: str = "sending", error: str | None = None) -> bool:
        """Insert the outbox row for (round, step); False if it exists already (never send it)."""
        try:
            with self._db.transaction() as s:
                exists = s.scalar(select(EscalationStepRecord.id).where(
                    EscalationStepRecord.escalation_id == escalation_id,
                    EscalationStepRecord.round == rnd, EscalationStepRecord.step == step))
                if exists is not None:
                    return False
                s.add(EscalationStepRecord(
                    escalation_id=escalation_id, round=rnd, step=step, channel=channel,
                    practitioner=practitioner, destination=destination, state=state, node=self._node,
                    attempts=1 if state == "sending" else 0, created_at=now, error=error))
            return True
        except IntegrityError:  # another node or thread claimed it between our check and insert
            return False

    def mark_sent(self, escalation_id: int, rnd: int, step: int, provider_id: str | None,
                  now: dt.datetime) -> None:
        self._set_step(escalation_id, rnd, step, state="sent", provider_id=provider_id, sent_at=now)

    def mark_failed(self, escalation_id: int, rnd: int, step: int, error: str, now: dt.datetime) -> None:
        self._set_step(escalation_id, rnd, step, state="failed", error=error[:500], sent_at=now)

    def mark_delivered(self, provider_id: str) -> bool:
        """A gateway's delivery report for `provider_id`."""
        with self._db.transaction() as s:
            result = s.execute(update(EscalationStepRecord)
                               .where(EscalationStepRecord.provider_id == provider_id,
                                      EscalationStepRecord.state == "sent")
                               .values(state="delivered"))
            return result.rowcount > 0

    def _set_step(self, escalation_id: int, rnd: int, step: int, **values) -> None:
        with self._db.transaction() as s:
            s.execute(update(EscalationStepRecord).where(
                EscalationStepRecord.escalation_id == escalation_id,
                EscalationStepRecord.round == rnd, EscalationStepRecord.step == step).values(**values))

    def acknowledge(self, escalation_id: int, by: str | None, via: str, now: dt.datetime) -> AckResult:
        """First acknowledgement wins; an active chain ends with outcome "acknowledged".

        A late acknowledgement of an exhausted chain is still recorded (the practitioner took the
        case) but its outcome stays "exhausted", so the weekly report shows the chain ran out.
        """
        with self._db.transaction() as s:
            row = s.get(Escalation, escalation_id, with_for_update=True)
            if row is None:
                raise UnknownEscalation(escalation_id)
            accepted = row.acknowledged_at is None and row.outcome != chain.CANCELLED
            if accepted:
                row.acknowledged_by, row.acknowledged_via, row.acknowledged_at = by, via, now
                if row.state == ACTIVE:
                    row.state, row.outcome, row.ended_at = DONE, chain.ACKNOWLEDGED, now
            s.flush()
            return AckResult(accepted, _view(row))

    def finish(self, escalation_id: int, outcome: str, now: dt.datetime) -> bool:
        with self._db.transaction() as s:
            result = s.execute(update(Escalation).where(Escalation.id == escalation_id,
                                                        Escalation.state == ACTIVE)
                               .values(state=DONE, outcome=outcome, ended_at=now))
            return result.rowcount > 0

    def mark_interrupted_sends(self) -> int:
        """At start-up: steps this node left in `sending` when it died become `unknown`.

        Other nodes' sends are theirs (they may be in flight); a chain reads a step still in
        `sending` as `unknown` anyway, so a node that never comes back does not block its chains.
        """
        with self._db.transaction() as s:
            result = s.execute(update(EscalationStepRecord)
                               .where(EscalationStepRecord.state == "sending",
                                      EscalationStepRecord.node == self._node)
                               .values(state="unknown", error="interrupted by a restart; not re-sent"))
            return result.rowcount

    def active(self) -> list[EscalationView]:
        with self._db.transaction() as s:
            rows = s.scalars(select(Escalation).where(Escalation.state == ACTIVE).order_by(Escalation.id))
            return [_view(r) for r in rows]

    def find_by_destination(self, destination: str) -> tuple[EscalationView, StepView] | None:
        """The newest chain not yet acknowledged that reached `destination`, and that step."""
        with self._db.transaction() as s:
            rows = s.scalars(select(Escalation).join(EscalationStepRecord)
                             .where(EscalationStepRecord.destination == destination,
                                    EscalationStepRecord.state.in_(("sent", "delivered", "unknown")),
                                    Escalation.acknowledged_at.is_(None))
                             .order_by(Escalation.started_at.desc(), Escalation.id.desc()).limit(1))
            row = rows.first()
            if row is None:
                return None
            view = _view(row)
        step = next(st for st in view.steps if st.destination == destination)
        return view, step

    def query(self, q: EscalationQuery) -> list[EscalationView]:
        with self._db.transaction() as s:
            stmt = select(Escalation)
            if q.practices is not None:
                stmt = stmt.where(Escalation.practice.in_(sorted(q.practices)))
            if q.since is not None:
                stmt = stmt.where(Escalation.started_at >= q.since)
            if q.until is not None:
                stmt = stmt.where(Escalation.started_at < q.until)
            if q.tier is not None:
                stmt = stmt.where(Escalation.tier == q.tier)
            if q.outcome is not None:
                stmt = stmt.where(Escalation.outcome == q.outcome)
            rows = s.scalars(stmt.order_by(Escalation.started_at.desc(), Escalation.id.desc())
                             .limit(q.limit))
            return [_view(r) for r in rows]

    def export_csv(self, q: EscalationQuery, actor: Actor, now: dt.datetime) -> tuple[str, int]:
        """CSV of the chains (no caller numbers), traced in the audit log in the same transaction."""
        rows = self.query(q)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for row in csv_rows(rows):
            writer.writerow(row)
        filters = {"practices": None if q.practices is None else sorted(q.practices),
                   "since": _iso(q.since), "until": _iso(q.until), "tier": q.tier,
                   "outcome": q.outcome, "limit": q.limit}
        with self._db.transaction() as s:
            append(s, actor, "escalations.export", "escalations", now,
                   details={"filters": filters, "records": len(rows)})
        return out.getvalue(), len(rows)

    def weekly_report(self, practice: str, since: dt.datetime, until: dt.datetime) -> dict:
        """Escalations per tier, acknowledgement delay (median and worst), unacknowledged chains."""
        views = self.query(EscalationQuery(frozenset({practice}), since, until, limit=100000))
        return report(practice, since, until, views)


def report(practice: str, since: dt.datetime, until: dt.datetime,
           views: Iterable[EscalationView]) -> dict:
    tiers: dict[str, dict] = {}
    for v in views:
        t = tiers.setdefault(v.tier, {"escalations": 0, "acknowledged": 0, "unacknowledged": 0,
                                      "active": 0, "delays": []})
        t["escalations"] += 1
        if v.acknowledged_at is not None:
            t["acknowledged"] += 1
            t["delays"].append(v.ack_delay_s)
        elif v.state == ACTIVE:
            t["active"] += 1
        else:
            t["unacknowledged"] += 1
    out = {}
    for name, t in sorted(tiers.items()):
        delays = t.pop("delays")
        t["ack_delay_p50_seconds"] = statistics.median(delays) if delays else None
        t["ack_delay_worst_seconds"] = max(delays) if delays else None
        out[name] = t
    return {"practice": practice, "since": since.isoformat(), "until": until.isoformat(), "tiers": out,
            "escalations": sum(t["escalations"] for t in out.values()),
            "unacknowledged": sum(t["unacknowledged"] for t in out.values())}


def csv_rows(views: Iterable[EscalationView]) -> Iterable[list]:
    for v in views:
        sent = sum(1 for s in v.steps if s.state in ("sent", "delivered", "unknown"))
        failed = sum(1 for s in v.steps if s.state in ("failed", "skipped"))
        yield [v.id, v.call_id or "", v.practice, v.tier, v.started_at.isoformat(), v.outcome or "",
               v.acknowledged_by or "", v.acknowledged_via or "", _iso(v.acknowledged_at) or "",
               "" if v.ack_delay_s is None else f"{v.ack_delay_s:.0f}", sent, failed]
