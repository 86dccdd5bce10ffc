"""Escalation chains and their outbox: durable, so a restarted controller resumes every chain.

Each step is *claimed* (a row inserted in state `sending`, unique on (escalation, round, step))
before its message leaves; only the claimer sends it. A restart turns rows left in `sending` into
`unknown` (they may or may not have left) and never re-sends them: see callrouter.escalation.engine.

An exhausted chain's alerts to the duty contact are stored as `pending` rows of round -1 in the
same transaction that ends the chain, then claimed (`pending` -> `sending`) and sent like steps:
a restart sends the pending ones, never one already claimed.

Practitioners' SMS replies are logged per chain (`escalation_replies`: masked number, what was
understood, what it did); a reply read as a refusal is what puts a practitioner in the chain's
`declined` set.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from typing import Callable, Iterable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from callrouter.domain import escalation as chain
from callrouter.domain.escalation_views import (  # the views are the store's answers: re-exported
    ACTIVE, DECLINED, DONE, STEP_STATES, AckResult, EscalationQuery, EscalationView, ReplyView, StepView,
    UnknownEscalation, iso_or_none,
)
from callrouter.store.audit import Actor, append
from callrouter.store.db import Database
from callrouter.store.escalation_reports import CSV_COLUMNS, csv_rows, report
from callrouter.store.models import Escalation, EscalationReply, EscalationStepRecord

logger = logging.getLogger(__name__)

DUTY_ROUND = -1  # the duty contact's alerts when a chain is exhausted: step 0 SMS, step 1 e-mail
EXHAUSTED = "exhausted"
# Told after each committed change of a chain (its id and practice), from the thread that made it.
OnChange = Callable[[int, str], None]


def _step(s: EscalationStepRecord) -> StepView:
    return StepView(s.round, s.step, s.channel, s.practitioner, s.destination, s.state, s.attempts,
                    s.provider_id, s.created_at, s.sent_at, s.error, s.outcome)


def _view(e: Escalation) -> EscalationView:
    ordered = sorted(e.steps, key=lambda s: (s.round, s.step))
    steps = tuple(_step(s) for s in ordered if s.round != DUTY_ROUND)
    duty = tuple(_step(s) for s in ordered if s.round == DUTY_ROUND)
    replies = tuple(ReplyView(r.at, r.sender, r.practitioner, r.via, r.understood, r.reference, r.action)
                    for r in e.replies)
    return EscalationView(e.id, e.call_id, e.practice, e.tier, e.caller, e.started_at, e.state,
                          e.outcome, e.ended_at, e.acknowledged_by, e.acknowledged_via,
                          e.acknowledged_at, e.dialplan_version, steps, e.triggered_by, e.note,
                          replies, duty, e.taken_by, e.taken_at)


class EscalationRepository:
    """Blocking: every method is one short transaction (run it from a thread pool).

    Implements callrouter.escalation.ports.ChainStore and AckStore. `on_change` is told of every
    committed change of a chain (created, a step claimed, sent, failed or delivered, a reply, the
    acknowledgement, its end, taken in hand): the wallboards follow the chains live."""

    def __init__(self, db: Database, node: str = "local", on_change: OnChange | None = None) -> None:
        self._db = db
        self._node = node
        self._on_change = on_change

    def _changed(self, escalation_id: int, practice: str | None) -> None:
        if self._on_change is not None and practice is not None:
            try:
                self._on_change(escalation_id, practice)
            except Exception:
                logger.exception("change of escalation %s not announced", escalation_id)

    def create(self, call_id: str | None, practice: str, tier: str, caller: str | None,
               now: dt.datetime, dialplan_version: str | None = None, triggered_by: str | None = None,
               note: str | None = None) -> EscalationView:
        with self._db.transaction() as s:
            row = Escalation(call_id=call_id, practice=practice, tier=tier, caller=caller,
                             started_at=now, state=ACTIVE, dialplan_version=dialplan_version,
                             triggered_by=triggered_by, note=note)
            s.add(row)
            s.flush()
            view = _view(row)
        self._changed(view.id, view.practice)
        return view

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
                practice = s.scalar(select(Escalation.practice).where(Escalation.id == escalation_id))
            self._changed(escalation_id, practice)
            return True
        except IntegrityError:  # another node or thread claimed it between our check and insert
            return False

    def mark_sent(self, escalation_id: int, rnd: int, step: int, provider_id: str | None,
                  now: dt.datetime, outcome: str | None = None) -> None:
        self._set_step(escalation_id, rnd, step, state="sent", provider_id=provider_id, sent_at=now,
                       outcome=outcome)

    def mark_failed(self, escalation_id: int, rnd: int, step: int, error: str, now: dt.datetime) -> None:
        self._set_step(escalation_id, rnd, step, state="failed", error=error[:500], sent_at=now)

    def mark_delivered(self, provider_id: str) -> bool:
        """A gateway's delivery report for `provider_id`."""
        with self._db.transaction() as s:
            sent = (EscalationStepRecord.provider_id == provider_id, EscalationStepRecord.state == "sent")
            chains = s.execute(select(Escalation.id, Escalation.practice).join(EscalationStepRecord)
                               .where(*sent).distinct()).all()
            result = s.execute(update(EscalationStepRecord).where(*sent).values(state="delivered"))
        for escalation_id, practice in chains:
            self._changed(escalation_id, practice)
        return result.rowcount > 0

    def _set_step(self, escalation_id: int, rnd: int, step: int, **values) -> None:
        with self._db.transaction() as s:
            s.execute(update(EscalationStepRecord).where(
                EscalationStepRecord.escalation_id == escalation_id,
                EscalationStepRecord.round == rnd, EscalationStepRecord.step == step).values(**values))
            practice = s.scalar(select(Escalation.practice).where(Escalation.id == escalation_id))
        self._changed(escalation_id, practice)

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
            result = AckResult(accepted, _view(row))
        if accepted:
            self._changed(escalation_id, result.escalation.practice)
        return result

    def finish(self, escalation_id: int, outcome: str, now: dt.datetime,
               alerts: Iterable[tuple[str, str]] = ()) -> bool:
        """End an active chain; False if it had ended already (another node, an acknowledgement).

        `alerts`: (channel, destination) of the duty contact to alert, stored `pending` in the
        same transaction, so a chain is never exhausted without its alerts on record."""
        with self._db.transaction() as s:
            result = s.execute(update(Escalation).where(Escalation.id == escalation_id,
                                                        Escalation.state == ACTIVE)
                               .values(state=DONE, outcome=outcome, ended_at=now))
            if result.rowcount == 0:
                return False
            for index, (channel, destination) in enumerate(alerts):
                s.add(EscalationStepRecord(
                    escalation_id=escalation_id, round=DUTY_ROUND, step=index, channel=channel,
                    practitioner=None, destination=destination, state="pending", node=self._node,
                    attempts=0, created_at=now))
            practice = s.scalar(select(Escalation.practice).where(Escalation.id == escalation_id))
        self._changed(escalation_id, practice)
        return True

    def pending_alerts(self, escalation_id: int | None = None) -> list[tuple[EscalationView, StepView]]:
        """Duty-contact alerts stored but not claimed yet (of one chain, or of every chain)."""
        with self._db.transaction() as s:
            stmt = select(EscalationStepRecord.escalation_id).where(
                EscalationStepRecord.round == DUTY_ROUND, EscalationStepRecord.state == "pending")
            if escalation_id is not None:
                stmt = stmt.where(EscalationStepRecord.escalation_id == escalation_id)
            ids = sorted(set(s.scalars(stmt)))
            out = []
            for eid in ids:
                view = _view(s.get(Escalation, eid))
                out += [(view, a) for a in view.duty_alerts if a.state == "pending"]
            return out

    def claim_alert(self, escalation_id: int, step: int, now: dt.datetime) -> bool:
        """`pending` -> `sending` for this node; False if another node or run claimed it first."""
        with self._db.transaction() as s:
            result = s.execute(update(EscalationStepRecord).where(
                EscalationStepRecord.escalation_id == escalation_id,
                EscalationStepRecord.round == DUTY_ROUND, EscalationStepRecord.step == step,
                EscalationStepRecord.state == "pending")
                .values(state="sending", node=self._node, attempts=1, created_at=now))
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

    def reached(self, destination: str, since: dt.datetime) -> list[tuple[EscalationView, str | None]]:
        """The chains a step reached `destination` in that are still active or ended after
        `since`, newest first, each with the practitioner that step was for."""
        with self._db.transaction() as s:
            reaching = select(EscalationStepRecord.escalation_id).where(
                EscalationStepRecord.destination == destination, EscalationStepRecord.round >= 0,
                EscalationStepRecord.state.in_(("sending", "sent", "delivered", "unknown")))
            rows = s.scalars(select(Escalation)
                             .where(Escalation.id.in_(reaching),
                                    (Escalation.state == ACTIVE) | (Escalation.ended_at >= since))
                             .order_by(Escalation.started_at.desc(), Escalation.id.desc()))
            out = []
            for row in rows:
                view = _view(row)
                step = next(st for st in reversed(view.steps) if st.destination == destination)
                out.append((view, step.practitioner))
            return out

    def record_reply(self, escalation_ids: Iterable[int], at: dt.datetime, sender: str,
                     practitioners: dict[int, str | None], via: str, understood: str,
                     reference_: str | None, action: str) -> None:
        """Log one reply on each chain it concerned. `sender` must be masked already."""
        with self._db.transaction() as s:
            for eid in escalation_ids:
                s.add(EscalationReply(escalation_id=eid, at=at, sender=sender[:32],
                                      practitioner=practitioners.get(eid), via=via, understood=understood,
                                      reference=reference_, action=action))
            changed = s.execute(select(Escalation.id, Escalation.practice)
                                .where(Escalation.id.in_(list(escalation_ids)))).all()
        for escalation_id, practice in changed:
            self._changed(escalation_id, practice)

    def take(self, escalation_id: int, by: str, now: dt.datetime, actor: Actor) -> tuple[bool, EscalationView]:
        """A supervisor takes an exhausted chain in hand (she finds someone for the patient); the
        first one wins. False (nothing changed) for a chain not exhausted or already taken. Audited
        with before and after in the same transaction."""
        with self._db.transaction() as s:
            row = s.get(Escalation, escalation_id, with_for_update=True)
            if row is None:
                raise UnknownEscalation(escalation_id)
            accepted = row.outcome == EXHAUSTED and row.taken_at is None
            if accepted:
                before = {"taken_by": None, "taken_at": None}
                row.taken_by, row.taken_at = by[:64], now
                append(s, actor, "escalation.take", f"escalation:{escalation_id}", now, before=before,
                       after={"taken_by": row.taken_by, "taken_at": now.isoformat()})
            s.flush()
            view = _view(row)
        if accepted:
            self._changed(escalation_id, view.practice)
        return accepted, view

    def open_chains(self, practices: frozenset[str] | None = None) -> list[EscalationView]:
        """Chains running now, and the exhausted ones nobody has taken in hand (nor acknowledged
        late) yet, oldest first."""
        with self._db.transaction() as s:
            stmt = select(Escalation).where(
                (Escalation.state == ACTIVE) | ((Escalation.outcome == EXHAUSTED) & Escalation.taken_at.is_(None)
                                                & Escalation.acknowledged_at.is_(None)))
            if practices is not None:
                stmt = stmt.where(Escalation.practice.in_(sorted(practices)))
            return [_view(r) for r in s.scalars(stmt.order_by(Escalation.started_at, Escalation.id))]

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
                   "since": iso_or_none(q.since), "until": iso_or_none(q.until), "tier": q.tier,
                   "outcome": q.outcome, "limit": q.limit}
        with self._db.transaction() as s:
            append(s, actor, "escalations.export", "escalations", now,
                   details={"filters": filters, "records": len(rows)})
        return out.getvalue(), len(rows)

    def weekly_report(self, practice: str, since: dt.datetime, until: dt.datetime) -> dict:
        """Escalations per tier, acknowledgement delay (median and worst), unacknowledged chains."""
        views = self.query(EscalationQuery(frozenset({practice}), since, until, limit=100000))
        return report(practice, since, until, views)


__all__ = [
    "ACTIVE", "DONE", "DUTY_ROUND", "DECLINED", "STEP_STATES", "AckResult", "EscalationQuery",
    "EscalationRepository", "EscalationView", "ReplyView", "StepView", "UnknownEscalation",
]
