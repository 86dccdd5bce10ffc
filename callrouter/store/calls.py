"""Call records: the CallStore the controller writes to, and the queries the admin API reads.

Each method is one short transaction, so a crash loses at most the step in progress: the record
itself exists from arrival and is closed later by `close_orphans` or `close_worker_calls`.
Every write is idempotent (replaying it changes nothing), so a caller may safely retry one whose
commit went through but whose answer was lost with the connection.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session, selectinload

from callrouter.domain.call import mask_number
from callrouter.domain.errors import UnknownCall
from callrouter.ports import LEG_KINDS, OUTCOMES, Actor, CallQuery
from callrouter.store.audit import trace_read
from callrouter.store.db import Database
from callrouter.store.models import CallLeg, CallRecord, IvrAnswer, Recording

logger = logging.getLogger(__name__)

CAUSE_MAX = 200  # the length of calls.cause and call_legs.end_cause


class CallRepository:
    """Implements callrouter.ports.CallStore on the database.

    `node` names this controller: records it opens carry it, and the crash sweeps
    (`close_orphans`, `close_worker_calls`) touch only its records, so several nodes can share one
    PostgreSQL database without closing each other's live calls.
    """

    def __init__(self, db: Database, node: str = "local") -> None:
        self._db = db
        self._node = node

    # --- writes, from the controller ---------------------------------------------------------

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """The writes of this thread within the block as one transaction (Database.batch): the
        call recorder's way to store what it has queued with one commit."""
        return self._db.batch()

    def open_call(self, call_id: str, practice: str, number: str, caller: str | None,
                  now: dt.datetime, worker: str | None = None) -> None:
        with self._db.transaction() as s:
            if s.execute(_CALL_EXISTS, {"id_": call_id}).first() is not None:
                return  # a replay
            s.execute(_OPEN_CALL, {"id": call_id, "practice": practice, "number": number, "caller": caller,
                                   "node": self._node, "worker": worker, "arrived_at": now})
            s.execute(_ADD_LEG, {"call_id": call_id, "kind": "caller", "party": caller, "started_at": now})
        logger.debug("call %s opened for %s from %s", call_id, practice, mask_number(caller))

    def ivr_answered(self, call_id: str, now: dt.datetime) -> None:
        self._set(call_id, ivr_answered_at=now)

    def add_ivr_answer(self, call_id: str, menu: str, digit: str, now: dt.datetime) -> None:
        with self._db.transaction() as s:
            self._get(s, call_id)
            replay = s.scalar(select(IvrAnswer.id).where(
                IvrAnswer.call_id == call_id, IvrAnswer.menu == menu, IvrAnswer.digit == digit,
                IvrAnswer.at == now))
            if replay is None:
                s.add(IvrAnswer(call_id=call_id, menu=menu, digit=digit, at=now))

    def set_route(self, call_id: str, route: str, reason: str, now: dt.datetime,
                  dialplan_version: str | None = None, why: Sequence[str] = ()) -> None:
        """The route taken, and the rules and reasons behind it (the latest decision wins)."""
        self._set(call_id, route=route, reason=clip(reason), routed_at=now,
                  dialplan_version=dialplan_version, why="\n".join(why) or None)

    def queued(self, call_id: str, queue: str, now: dt.datetime) -> None:
        self._set(call_id, queue=queue, queued_at=now)

    def offered(self, call_id: str, secretary: str, now: dt.datetime) -> None:
        """Keep the first offer time; the controller adds a secretary leg (add_leg) per offer."""
        with self._db.transaction() as s:
            call = self._get(s, call_id)
            if call.offered_at is None:
                call.offered_at = now

    def answered(self, call_id: str, secretary: str, now: dt.datetime) -> None:
        self._set(call_id, answered_at=now, secretary=secretary)

    def add_leg(self, call_id: str, kind: str, party: str | None, now: dt.datetime) -> int:
        if kind not in LEG_KINDS:
            raise ValueError(f"unknown leg kind {kind!r}; expected one of {', '.join(LEG_KINDS)}")
        with self._db.transaction() as s:
            self._get(s, call_id)
            replay = s.scalar(select(CallLeg.id).where(
                CallLeg.call_id == call_id, CallLeg.kind == kind, CallLeg.started_at == now,
                CallLeg.party.is_(None) if party is None else CallLeg.party == party))
            if replay is not None:
                return replay
            leg = CallLeg(call_id=call_id, kind=kind, party=party, started_at=now)
            s.add(leg)
            s.flush()
            return leg.id

    def end_leg(self, leg_id: int, cause: str, now: dt.datetime) -> None:
        with self._db.transaction() as s:
            s.execute(update(CallLeg).where(CallLeg.id == leg_id, CallLeg.ended_at.is_(None))
                      .values(ended_at=now, end_cause=clip(cause)))

    def close_call(self, call_id: str, outcome: str, now: dt.datetime,
                   cause: str | None = None) -> bool:
        """Close an open record; False (and nothing changed) if it was already closed."""
        _check_outcome(outcome, cause)
        with self._db.transaction() as s:
            # Statements, not the record loaded and flushed: that was most of the recorder's CPU
            # per call (the last write of each call, on its thread).
            row = s.execute(_CLOSE_READ, {"id_": call_id}).first()
            if row is None:
                raise UnknownCall(call_id)
            if row.ended_at is not None:
                return False
            wait = None if row.queued_at is None else max(0.0, ((row.answered_at or now) - row.queued_at).total_seconds())
            s.execute(_CLOSE, {"id_": call_id, "ended_at": now, "outcome": outcome, "cause": clip(cause),
                               "queue_wait_seconds": wait})
            s.execute(_END_LEGS, {"call_id_": call_id, "ended_at": now, "end_cause": clip(cause or outcome)})
            held = s.identity_map.get(s.identity_key(CallRecord, call_id))
            if held is not None:
                s.expire(held)
        logger.debug("call %s closed: %s%s", call_id, outcome, f" ({cause})" if cause else "")
        return True

    def close_worker_calls(self, worker: str, cause: str, now: dt.datetime) -> list[str]:
        """Close, as failed with `cause`, every open call held by a media worker that died."""
        return self._close_open(CallRecord.worker == worker, cause, now)

    def close_orphans(self, cause: str, now: dt.datetime, keep: tuple[str, ...] = ()) -> list[str]:
        """Close this node's open records but those in `keep` (run at start-up: no call survives
        a restart, but those a media service kept and this controller re-adopted)."""
        return self._close_open(CallRecord.id.not_in(keep) if keep else None, cause, now)

    def set_caller_leg(self, call_id: str, leg: str) -> None:
        self._set(call_id, caller_leg=leg)

    def add_recording(self, call_id: str, location: str, started_at: dt.datetime,
                      duration_seconds: float | None, now: dt.datetime) -> int:
        with self._db.transaction() as s:
            rec = Recording(call_id=call_id, location=location, started_at=started_at,
                            duration_seconds=duration_seconds, created_at=now)
            s.add(rec)
            s.flush()
            return rec.id

    # --- reads, for the API --------------------------------------------------------------------

    def get(self, call_id: str) -> CallRecord:
        with self._db.transaction() as s:
            return self._full(s, call_id)

    def query(self, q: CallQuery) -> list[CallRecord]:
        with self._db.transaction() as s:
            return self._query(s, q)

    # --- reads traced in the audit trail, for the API: the read and its entry in one transaction ---

    def read(self, q: CallQuery, reader: Actor, now: dt.datetime, filters: dict) -> list[CallRecord]:
        """`query`, traced as a "calls.read" with the API's `filters`."""
        return self._traced(q, reader, now, "calls.read", filters)

    def export(self, q: CallQuery, reader: Actor, now: dt.datetime, filters: dict) -> list[CallRecord]:
        """`query` for an export, traced as a "calls.export": no export leaves without its entry."""
        return self._traced(q, reader, now, "calls.export", filters)

    def read_one(self, call_id: str, practices: frozenset[str] | None, reader: Actor,
                 now: dt.datetime) -> CallRecord:
        """One record, traced; UnknownCall (and no entry) for a call of a practice outside
        `practices` (None: every practice), as for a missing one."""
        with self._db.transaction() as s:
            call = self._full(s, call_id)
            if practices is not None and call.practice not in practices:
                raise UnknownCall(call_id)
            trace_read(s, reader, "calls.read", f"call:{call.id}", now, 1, {})
            return call

    def _traced(self, q: CallQuery, reader: Actor, now: dt.datetime, action: str,
                filters: dict) -> list[CallRecord]:
        with self._db.transaction() as s:
            calls = self._query(s, q)
            trace_read(s, reader, action, "calls", now, len(calls), filters)
            return calls

    def open_calls(self) -> list[CallRecord]:
        with self._db.transaction() as s:
            return list(s.scalars(select(CallRecord).where(CallRecord.ended_at.is_(None))
                                  .order_by(CallRecord.arrived_at)))

    # --- helpers -------------------------------------------------------------------------------

    def _set(self, call_id: str, **values) -> None:
        # One UPDATE, without reading the record first (several per call, on the recorder's thread);
        # not matched against every record the session holds (a batch holds hundreds): the one
        # record it may hold is read again when next used.
        with self._db.transaction() as s:
            done = s.execute(_set_statement(tuple(sorted(values))), {"id_": call_id, **values})
            if done.rowcount == 0:
                raise UnknownCall(call_id)
            held = s.identity_map.get(s.identity_key(CallRecord, call_id))
            if held is not None:
                s.expire(held, list(values))

    @staticmethod
    def _full(s: Session, call_id: str) -> CallRecord:
        """The record with its legs and IVR answers loaded (it is read after the session ends)."""
        call = s.scalars(select(CallRecord).where(CallRecord.id == call_id)
                         .options(selectinload(CallRecord.legs),
                                  selectinload(CallRecord.ivr_answers))).one_or_none()
        if call is None:
            raise UnknownCall(call_id)
        return call

    @staticmethod
    def _query(s: Session, q: CallQuery) -> list[CallRecord]:
        stmt = select(CallRecord).options(selectinload(CallRecord.legs),
                                          selectinload(CallRecord.ivr_answers))
        if q.practices is not None:
            stmt = stmt.where(CallRecord.practice.in_(sorted(q.practices)))
        if q.since is not None:
            stmt = stmt.where(CallRecord.arrived_at >= q.since)
        if q.until is not None:
            stmt = stmt.where(CallRecord.arrived_at < q.until)
        if q.outcome is not None:
            stmt = stmt.where(CallRecord.outcome == q.outcome)
        stmt = stmt.order_by(CallRecord.arrived_at.desc(), CallRecord.id).limit(q.limit)
        return list(s.scalars(stmt))

    @staticmethod
    def _get(s: Session, call_id: str) -> CallRecord:
        call = s.get(CallRecord, call_id)
        if call is None:
            raise UnknownCall(call_id)
        return call

    def _close_open(self, condition, cause: str, now: dt.datetime) -> list[str]:
        with self._db.transaction() as s:
            stmt = select(CallRecord).where(CallRecord.ended_at.is_(None),
                                            CallRecord.node == self._node)
            if condition is not None:
                stmt = stmt.where(condition)
            calls = list(s.scalars(stmt.with_for_update()))
            for call in calls:
                _close(s, call, "failed", cause, now)
            ids = [c.id for c in calls]
        if ids:
            logger.warning("closed %s open call(s) as failed: %s", len(ids), cause)
        return ids


def _check_outcome(outcome: str, cause: str | None) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}")
    if outcome == "failed" and not cause:
        raise ValueError("a failed call needs its cause")


def _close(s: Session, call: CallRecord, outcome: str, cause: str | None, now: dt.datetime) -> None:
    call.ended_at = now
    call.outcome = outcome
    call.cause = clip(cause)
    if call.queued_at is not None:
        waited_until = call.answered_at or now
        call.queue_wait_seconds = max(0.0, (waited_until - call.queued_at).total_seconds())
    s.execute(_END_LEGS, {"call_id_": call.id, "ended_at": now, "end_cause": clip(cause or outcome)})


def close_in(s: Session, call: CallRecord, outcome: str, cause: str | None, now: dt.datetime) -> None:
    """Close `call` (open, and locked by the caller) in the caller's transaction, its open legs
    with it: the reaper's write (callrouter.store.reaping), done with the task it creates."""
    _check_outcome(outcome, cause)
    _close(s, call, outcome, cause, now)


def clip(text: str | None, limit: int = CAUSE_MAX) -> str | None:
    """A cause as stored: a worker's SIP reason can be any length, and a write refused by the
    column's limit would leave the leg or the call open for good."""
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


# The recorder's statements, built once: a statement built per write cost more than its execution
# (SQLAlchemy computes each new statement's cache key). On the table, not the ORM entity: the few
# records a session holds are not matched against them (_set expires the one it may hold).
@functools.lru_cache(maxsize=32)
def _set_statement(columns: tuple[str, ...]):
    table = CallRecord.__table__
    return update(table).where(table.c.id == bindparam("id_")).values({c: bindparam(c) for c in columns})


_CALLS, _LEGS = CallRecord.__table__, CallLeg.__table__
_CALL_EXISTS = select(_CALLS.c.id).where(_CALLS.c.id == bindparam("id_"))
_OPEN_CALL = insert(_CALLS).values({c: bindparam(c) for c in ("id", "practice", "number", "caller", "node", "worker",
                                                                "arrived_at")})
_ADD_LEG = insert(_LEGS).values({c: bindparam(c) for c in ("call_id", "kind", "party", "started_at")})
_CLOSE_READ = select(_CALLS.c.ended_at, _CALLS.c.queued_at, _CALLS.c.answered_at).where(_CALLS.c.id == bindparam("id_"))
_CLOSE = (update(_CALLS).where(_CALLS.c.id == bindparam("id_"), _CALLS.c.ended_at.is_(None))
          .values({c: bindparam(c) for c in ("ended_at", "outcome", "cause", "queue_wait_seconds")}))
_END_LEGS = (update(CallLeg.__table__)
             .where(CallLeg.__table__.c.call_id == bindparam("call_id_"), CallLeg.__table__.c.ended_at.is_(None))
             .values(ended_at=bindparam("ended_at"), end_cause=bindparam("end_cause")))


# --- "calls today", for the controller at start-up -------------------------------------------

@dataclass(frozen=True)
class Arrival:
    """One call as the controller counts it: who called which practice when, who answered when."""

    call_id: str
    practice: str
    caller: str | None
    arrived_at: dt.datetime
    secretary: str | None
    answered_at: dt.datetime | None


def arrivals_since(db: Database, since: dt.datetime) -> list[Arrival]:
    """Every call arrived since `since` (on any node), oldest first: the controller counts from
    them how many times a caller called and how many calls a secretary answered on each practice's
    local day, so a restart does not reset those counts. Blocking: call it off the reactor thread."""
    with db.transaction() as s:
        rows = s.execute(select(CallRecord.id, CallRecord.practice, CallRecord.caller, CallRecord.arrived_at,
                                CallRecord.secretary, CallRecord.answered_at)
                         .where(CallRecord.arrived_at >= since)
                         .order_by(CallRecord.arrived_at, CallRecord.id))
        return [Arrival(*row) for row in rows]
