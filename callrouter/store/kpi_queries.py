"""The records of practices over a time range, as the plain facts callrouter.domain.kpis reads.

One query per table, each on indexed columns: calls by (practice, arrived_at), the IVR answers of
those calls by call_id, callback tasks by practice then creation time, escalation chains by
(practice, started_at) and the replies that declined them by escalation_id. The figures
themselves are computed by callrouter.domain.kpis, never here.

What a call record says is read into the facts the definitions need:
- the route its arrival got: the record keeps the latest decision's route, which is "overflow"
  once a call overflowed; the arrival's route is then read from the decision's reasons, which keep
  the calendar's route ("route 'open': ...");
- why it overflowed (nobody, length, wait): from the reason the controller recorded
  ("...; overflow on nobody").

Blocking: run from a thread pool. Reads no phone number.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Iterable

from sqlalchemy import distinct, func, select

from callrouter.domain.escalation_views import DECLINED
from callrouter.domain.kpis import CallFact, EscalationFact, KpiRecords, TaskFact
from callrouter.store.db import Database
from callrouter.store.models import CallbackTask, CallRecord, Escalation, EscalationReply, IvrAnswer

_ROUTE = re.compile(r"^route '([^']+)'", re.MULTILINE)
_OVERFLOW = re.compile(r"overflow (?:on |\()(\w+)")


def arrival_route(route: str | None, why: str | None) -> str | None:
    """The route of the call's arrival (see the module's docstring)."""
    if route != "overflow":
        return route
    found = _ROUTE.search(why or "")
    return found.group(1) if found else None


def overflow_cause(reason: str | None, why: str | None) -> str | None:
    for text in (reason, why):
        found = _OVERFLOW.search(text or "")
        if found:
            return found.group(1)
    return None


class KpiQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    def records(self, practices: Iterable[str], since: dt.datetime, until: dt.datetime) -> KpiRecords:
        """The calls arrived, tasks created and chains started in [since, until) for `practices`."""
        practices = sorted(set(practices))
        if not practices:
            return KpiRecords()
        with self._db.transaction() as s:
            in_range = (CallRecord.practice.in_(practices), CallRecord.arrived_at >= since,
                        CallRecord.arrived_at < until)
            menus = set(s.scalars(select(IvrAnswer.call_id).distinct()
                                  .join(CallRecord, CallRecord.id == IvrAnswer.call_id).where(*in_range)))
            calls = tuple(
                CallFact(r.id, r.practice, r.arrived_at, arrival_route(r.route, r.why), r.queue, r.queued_at,
                         r.answered_at, r.ended_at, r.outcome, overflow_cause(r.reason, r.why), r.id in menus)
                for r in s.execute(select(CallRecord.id, CallRecord.practice, CallRecord.arrived_at, CallRecord.route,
                                          CallRecord.why, CallRecord.reason, CallRecord.queue, CallRecord.queued_at,
                                          CallRecord.answered_at, CallRecord.ended_at, CallRecord.outcome)
                                   .where(*in_range).order_by(CallRecord.arrived_at, CallRecord.id)))
            tasks = tuple(
                TaskFact(*row) for row in s.execute(
                    select(CallbackTask.id, CallbackTask.practice, CallbackTask.source, CallbackTask.created_at,
                           CallbackTask.state, CallbackTask.done_at)
                    .where(CallbackTask.practice.in_(practices), CallbackTask.created_at >= since,
                           CallbackTask.created_at < until)
                    .order_by(CallbackTask.created_at, CallbackTask.id)))
            chains_in_range = (Escalation.practice.in_(practices), Escalation.started_at >= since,
                               Escalation.started_at < until)
            declined = dict(s.execute(
                select(EscalationReply.escalation_id, func.count(distinct(EscalationReply.practitioner)))
                .join(Escalation, Escalation.id == EscalationReply.escalation_id)
                .where(*chains_in_range, EscalationReply.action == DECLINED,
                       EscalationReply.practitioner.is_not(None))
                .group_by(EscalationReply.escalation_id)).all())
            escalations = tuple(
                EscalationFact(r.id, r.practice, r.tier, r.started_at, r.state, r.outcome, r.acknowledged_at,
                               declined.get(r.id, 0), r.call_id, r.taken_at)
                for r in s.execute(select(Escalation.id, Escalation.practice, Escalation.tier, Escalation.started_at,
                                          Escalation.state, Escalation.outcome, Escalation.acknowledged_at,
                                          Escalation.call_id, Escalation.taken_at)
                                   .where(*chains_in_range).order_by(Escalation.started_at, Escalation.id)))
        return KpiRecords(calls, tasks, escalations)
