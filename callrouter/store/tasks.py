"""Callback tasks: patients to call back, durable so that a restarted controller puts them back in line.

A task comes from an overflow offer (the caller pressed 1 and confirmed a number), a voicemail,
a secretary, or a node lost with the caller waiting on it (`node_lost`, callrouter.store.reaping). Its life:

    open | assigned  --assign-->          assigned   (someone takes it; not while it is being called)
    open | assigned  --start_attempt-->   calling    (an outbound call is placed; attempts + 1)
    calling          --attempt_failed-->  assigned   (nobody answered: it stays hers, in line)
    open | assigned | calling --done-->   done       (the patient was reached; the call is kept)
    open | assigned  --cancel-->          cancelled
    open | assigned  --expire_due-->      expired    (its deadline passed)

Anything else raises TaskStateError. Every method is one short transaction and every write is
idempotent: replaying it (same arguments, e.g. after a lost answer) changes nothing and returns the
task, so the controller may retry freely. The task id is chosen by the creator when it wants to
know it before the row exists. Time is always passed in. When an `actor` is given, the change is
written to the audit trail in the same transaction; a replay that changes nothing adds no entry.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from typing import Any, Callable

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callrouter.domain.call import mask_number
from callrouter.domain.phone import normalise
from callrouter.domain.tasks import (
    ACTIVE, ASSIGNED, CALLING, CANCELLED, DONE, EXPIRED, OPEN, WAITING, TaskQuery, TaskStateError,
    TaskView, UnknownTask,
)
from callrouter.ports import Actor
from callrouter.store.audit import append, trace_read
from callrouter.store.db import Database
from callrouter.store.models import CallbackTask

logger = logging.getLogger(__name__)

SOURCES = ("overflow", "voicemail", "secretary", "node_lost")  # node_lost: callrouter.store.reaping
NOTE_MAX = 500
_TASK_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def new_task_id() -> str:
    return uuid.uuid4().hex


def _view(t: CallbackTask) -> TaskView:
    return TaskView(t.id, t.practice, t.queue, t.number, t.source, t.call_id, t.created_at,
                    t.created_by, t.place_at, t.expires_at, t.state, t.assigned_to, t.attempts,
                    t.attempt_leg, t.last_attempt_at, t.done_at, t.done_call_id, t.done_leg,
                    t.cancelled_by, t.cancel_reason, t.note, t.updated_at)


def _audit_state(t: CallbackTask) -> dict:
    return {"state": t.state, "assigned_to": t.assigned_to}


def _clean(text: str | None, limit: int) -> str | None:
    return " ".join(text.split())[:limit] or None if text else None


# A transition: mutates the locked row and returns True, or returns False when it is a replay.
Change = Callable[[CallbackTask], bool]


class TaskRepository:
    """Blocking: every method is one short transaction (run it from a thread pool). `node`: this
    controller's node, written on the attempts it starts (None: one node, as with SQLite)."""

    def __init__(self, db: Database, node: str | None = None) -> None:
        self._db = db
        self._node = node

    # --- creation ------------------------------------------------------------------------------

    def create(self, practice: str, number: str, source: str, now: dt.datetime,
               expires_at: dt.datetime, *, task_id: str | None = None, place_at: dt.datetime | None = None,
               queue: str | None = None, call_id: str | None = None, note: str | None = None,
               created_by: str | None = None, actor: Actor | None = None) -> TaskView:
        """Create an open task; with the id of an existing task, return that task unchanged.

        `number` is normalised to E.164 (InvalidNumber, a ValueError, if it is not a French number
        we may call back). `place_at` defaults to `now`.
        """
        task_id = task_id or new_task_id()
        if not _TASK_ID.fullmatch(task_id):
            raise ValueError(f"bad task id {task_id!r}: 1 to 64 letters, digits, _ . : -")
        if source not in SOURCES:
            raise ValueError(f"unknown task source {source!r}; expected one of {', '.join(SOURCES)}")
        number = normalise(number)
        try:
            with self._db.transaction() as s:
                existing = s.get(CallbackTask, task_id)
                if existing is not None:
                    return _view(existing)  # a replay
                view = insert_task(s, task_id, practice, number, source, now, expires_at, place_at=place_at,
                                   queue=queue, call_id=call_id, note=note, created_by=created_by, actor=actor)
        except IntegrityError:  # created by another thread or node between our check and insert
            return self.get(task_id)
        logger.info("task %s created for %s (%s) to call back %s", task_id, practice, source,
                    mask_number(number))
        return view

    # --- transitions ---------------------------------------------------------------------------

    def assign(self, task_id: str, who: str, now: dt.datetime,
               actor: Actor | None = None) -> TaskView:
        """Give the task to `who` (a username or a SIP URI), from open or assigned."""
        def change(t: CallbackTask) -> bool:
            if t.state == ASSIGNED and t.assigned_to == who:
                return False
            if t.state not in WAITING:
                raise TaskStateError(t.id, t.state, "assign",
                                     "it is being called" if t.state == CALLING else "it is closed")
            t.state, t.assigned_to = ASSIGNED, who
            return True
        return self._change(task_id, "assign", change, now, actor, {"to": who})

    def start_attempt(self, task_id: str, who: str, leg: str, now: dt.datetime,
                      actor: Actor | None = None) -> TaskView:
        """An outbound call on `leg` is placed by `who`: the task is calling, one attempt more."""
        def change(t: CallbackTask) -> bool:
            if t.state == CALLING and t.attempt_leg == leg:
                return False
            if t.state not in WAITING:
                raise TaskStateError(t.id, t.state, "call",
                                     "another call is under way" if t.state == CALLING else "it is closed")
            t.state, t.assigned_to, t.attempt_leg, t.attempt_node = CALLING, who, leg, self._node
            t.attempts += 1
            t.last_attempt_at = now
            return True
        return self._change(task_id, "start_attempt", change, now, actor, {"leg": leg, "by": who})

    def attempt_failed(self, task_id: str, now: dt.datetime, leg: str | None = None,
                       actor: Actor | None = None) -> TaskView:
        """The attempt ended without reaching the patient: back to assigned, in line again.

        A no-op unless the task is calling (on `leg`, when given): a late report about a call the
        task has moved on from (done by hand, a newer attempt) changes nothing.
        """
        def change(t: CallbackTask) -> bool:
            if t.state != CALLING or (leg is not None and t.attempt_leg != leg):
                return False
            t.state, t.attempt_leg, t.attempt_node = ASSIGNED, None, None
            return True
        return self._change(task_id, "attempt_failed", change, now, actor, {"leg": leg})

    def done(self, task_id: str, call_id: str | None, leg: str | None, now: dt.datetime,
             actor: Actor | None = None) -> TaskView:
        """The patient was reached, by the call `call_id`/`leg` (None when marked done by hand)."""
        def change(t: CallbackTask) -> bool:
            if t.state == DONE and (t.done_call_id, t.done_leg) == (call_id, leg):
                return False
            if t.state not in ACTIVE:
                raise TaskStateError(t.id, t.state, "complete",
                                     "done by another call" if t.state == DONE else "")
            t.state, t.attempt_leg, t.attempt_node = DONE, None, None
            t.done_at, t.done_call_id, t.done_leg = now, call_id, leg
            return True
        return self._change(task_id, "done", change, now, actor, {"call_id": call_id, "leg": leg})

    def cancel(self, task_id: str, who: str, now: dt.datetime, reason: str | None = None,
               actor: Actor | None = None) -> TaskView:
        """Nobody needs to call back any more (patient reached another way, wrong number...)."""
        reason = _clean(reason, 200)

        def change(t: CallbackTask) -> bool:
            if t.state == CANCELLED:
                return False
            if t.state not in WAITING:
                raise TaskStateError(t.id, t.state, "cancel",
                                     "it is being called; wait for the call to end"
                                     if t.state == CALLING else "")
            t.state, t.cancelled_by, t.cancel_reason = CANCELLED, who, reason
            return True
        return self._change(task_id, "cancel", change, now, actor, {"reason": reason})

    def expire_due(self, now: dt.datetime, actor: Actor | None = None) -> list[TaskView]:
        """Expire the waiting tasks whose deadline has passed (a task being called is left alone:
        its call decides, and a failed attempt leaves it waiting, to expire on the next run)."""
        with self._db.transaction() as s:
            rows = list(s.scalars(select(CallbackTask)
                                  .where(CallbackTask.state.in_(WAITING), CallbackTask.expires_at <= now)
                                  .order_by(CallbackTask.place_at, CallbackTask.id).with_for_update()))
            for t in rows:
                before = _audit_state(t)
                t.state, t.updated_at = EXPIRED, now
                if actor is not None:
                    append(s, actor, "task.expire", f"task:{t.id}", now, before, _audit_state(t))
            views = [_view(t) for t in rows]
        if views:
            logger.info("%s callback task(s) expired", len(views))
        return views

    def release_interrupted(self, now: dt.datetime, actor: Actor | None = None) -> list[TaskView]:
        """At start-up: tasks left calling by a controller that died go back in line (assigned).

        No call survives a restart, so their attempt is over. Run it before `pending`. With a `node`,
        only the attempts this node started (and those of no node, stored before nodes were kept):
        another node's calls go on; a lost node's are released by the survivor reaping it. On
        SQLite, every one (one node, whatever its name was).
        """
        with self._db.transaction() as s:
            stmt = select(CallbackTask).where(CallbackTask.state == CALLING)
            if self._node is not None and self._db.engine.dialect.name != "sqlite":  # SQLite: one node
                stmt = stmt.where(or_(CallbackTask.attempt_node == self._node, CallbackTask.attempt_node.is_(None)))
            rows = list(s.scalars(stmt.with_for_update()))
            views = [release_attempt(s, t, now, actor, "interrupted by a restart") for t in rows]
        if views:
            logger.warning("%s callback task(s) were being called when the controller stopped; "
                           "back in line", len(views))
        return views

    # --- reads ---------------------------------------------------------------------------------

    def get(self, task_id: str) -> TaskView:
        with self._db.transaction() as s:
            return _view(self._get(s, task_id))

    def list(self, q: TaskQuery) -> list[TaskView]:
        """Tasks in line order: by `place_at` (the original call's enqueue time), then id."""
        with self._db.transaction() as s:
            return self._list(s, q)

    def read(self, task_id: str, practices: frozenset[str] | None, reader: Actor,
             now: dt.datetime) -> TaskView:
        """One task, traced as a "tasks.read"; UnknownTask (and no entry) for a task of a practice
        outside `practices` (None: every practice), as for a missing one."""
        with self._db.transaction() as s:
            task = self._get(s, task_id)
            if practices is not None and task.practice not in practices:
                raise UnknownTask(task_id)
            trace_read(s, reader, "tasks.read", f"task:{task_id}", now, 1)
            return _view(task)

    def read_list(self, q: TaskQuery, reader: Actor, now: dt.datetime, filters: dict) -> list[TaskView]:
        """`list`, traced as a "tasks.read" with the API's `filters`, in the same transaction."""
        with self._db.transaction() as s:
            views = self._list(s, q)
            trace_read(s, reader, "tasks.read", "tasks", now, len(views), filters)
            return views

    @staticmethod
    def _list(s: Session, q: TaskQuery) -> list[TaskView]:
        stmt = select(CallbackTask)
        if q.practices is not None:
            stmt = stmt.where(CallbackTask.practice.in_(sorted(q.practices)))
        if q.states is not None:
            stmt = stmt.where(CallbackTask.state.in_(sorted(q.states)))
        rows = s.scalars(stmt.order_by(CallbackTask.place_at, CallbackTask.id).limit(q.limit))
        return [_view(t) for t in rows]

    def pending(self, now: dt.datetime) -> list[TaskView]:
        """The tasks waiting in line (open or assigned, deadline not reached), in line order: what
        the controller reloads at start-up."""
        with self._db.transaction() as s:
            rows = s.scalars(select(CallbackTask)
                             .where(CallbackTask.state.in_(WAITING), CallbackTask.expires_at > now)
                             .order_by(CallbackTask.place_at, CallbackTask.id))
            return [_view(t) for t in rows]

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _get(s: Session, task_id: str, lock: bool = False) -> CallbackTask:
        task = s.get(CallbackTask, task_id, with_for_update=lock)
        if task is None:
            raise UnknownTask(task_id)
        return task

    def _change(self, task_id: str, action: str, change: Change, now: dt.datetime,
                actor: Actor | None, details: dict[str, Any]) -> TaskView:
        with self._db.transaction() as s:
            t = self._get(s, task_id, lock=True)
            before = _audit_state(t)
            changed = change(t)
            if changed:
                t.updated_at = now
                if actor is not None:
                    append(s, actor, f"task.{action}", f"task:{task_id}", now, before,
                           _audit_state(t), details={k: v for k, v in details.items() if v is not None})
            view = _view(t)
        if changed:
            logger.info("task %s: %s -> %s", task_id, before["state"], view.state)
        return view


def insert_task(s: Session, task_id: str, practice: str, number: str, source: str, now: dt.datetime,
                expires_at: dt.datetime, *, place_at: dt.datetime | None = None, queue: str | None = None,
                call_id: str | None = None, note: str | None = None, created_by: str | None = None,
                actor: Actor | None = None) -> TaskView:
    """Insert an open task inside the caller's transaction (`number` already in E.164), audited
    when an `actor` is given: `TaskRepository.create`'s write, and the reaper's
    (callrouter.store.reaping), whose task is created with the record it closes."""
    if expires_at <= now:
        raise ValueError("a task's deadline must be after its creation")
    row = CallbackTask(
        id=task_id, practice=practice, queue=queue, number=number, source=source,
        call_id=call_id, created_at=now, created_by=created_by,
        place_at=place_at or now, expires_at=expires_at, state=OPEN, attempts=0,
        note=_clean(note, NOTE_MAX), updated_at=now)
    s.add(row)
    s.flush()
    if actor is not None:
        append(s, actor, "task.create", f"task:{task_id}", now, after=_audit_state(row),
               details={"practice": practice, "source": source, "call_id": call_id,
                        "expires_at": expires_at.isoformat(), "note_chars": len(row.note or "")})
    return _view(row)


def release_attempt(s: Session, t: CallbackTask, now: dt.datetime, actor: Actor | None, cause: str) -> TaskView:
    """A task left `calling` (locked by the caller) whose call cannot be going on any more (its
    controller restarted, or its node was lost): back in line, assigned to whoever had it."""
    before = _audit_state(t)
    node = t.attempt_node
    t.state, t.attempt_leg, t.attempt_node, t.updated_at = ASSIGNED, None, None, now
    if actor is not None:
        append(s, actor, "task.attempt_failed", f"task:{t.id}", now, before, _audit_state(t),
               details={"cause": cause, **({"node": node} if node else {})})
    return _view(t)


def purge_closed(session: Session, cutoff: dt.datetime) -> int:
    """Delete the closed tasks (done, expired, cancelled) last changed before `cutoff`, inside the
    caller's transaction: for retention, since they hold patients' numbers. Active ones stay."""
    result = session.execute(delete(CallbackTask).where(CallbackTask.state.not_in(ACTIVE),
                                                        CallbackTask.updated_at < cutoff))
    return result.rowcount
