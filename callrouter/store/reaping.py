"""The calls of a node gone for good, closed by a survivor (docs/operations.md, "A lost node's calls").

A call is media in one process: when its node dies, the caller's audio dies with it, and its call
record stays open, its node's name on it (`calls.node`). The node leading the `reaper` role finds
the nodes whose lease has been gone (expired, or given up) for longer than a grace, and closes
each of their open records in one transaction of its own:

- a caller who was not answered (in the menu, waiting in a queue, ringing a secretary) and whose
  number we may call back: a callback task for her practice (source `node_lost`, her place in
  line the time she was queued, a note for the secretaries), and her record closed as a caller
  who accepted a callback is (`callback_requested`), with the cause `node_lost`; a call that
  already has a task (she had asked for a callback, left a message) gets no second one;
- a caller who was answered (talking to a secretary, or being transferred): `failed`, `node_lost`;
- a caller whose number is withheld or cannot be called back: `failed`, `node_lost`, no task;
- a callback task the node was calling (`attempt_node`): back in line, assigned to the same
  secretary, as the node's own restart would have done (`release_attempt`).

Every transaction is fenced by the reaper's lead (FencedDatabase: a node that lost it writes
nothing), locks the dead node's lease row FOR SHARE and checks again, on the database's clock,
that it is still gone: a node that comes back (a controller restarted with its media service
alive takes its name back under a new epoch, then re-adopts its calls, callrouter.controller.
readopt) takes that row FOR UPDATE, so either it is back first and its calls are never touched,
or it waits for the reaper's transaction. The record is locked FOR UPDATE and skipped once
closed, and the task's id is made from the call's (`task_id_for`): run twice, by two reapers or a
retry, it makes one task. Each reaping is audited as the system (`call.reaped`, and the task's
`task.create`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Callable

from prometheus_client import CollectorRegistry
from sqlalchemy import Interval, func, literal, select
from sqlalchemy.orm import Session

from callrouter.cluster.build import Cluster
from callrouter.cluster.leader import Leadership
from callrouter.cluster.reaper import REAPER, ReapEvents, ReapMetrics, Reaper
from callrouter.cluster.settings import ClusterSettings
from callrouter.domain.callback_dialogue import callable_number
from callrouter.domain.tasks import CALLING, TaskView
from callrouter.store.audit import SYSTEM, append
from callrouter.store.calls import close_in
from callrouter.store.db import Database
from callrouter.store.leases import FencedDatabase
from callrouter.store.models import CallbackTask, CallRecord, NodeLeaseRecord
from callrouter.store.tasks import insert_task, release_attempt

logger = logging.getLogger(__name__)

CAUSE = "node_lost"
SOURCE = "node_lost"
CALLBACK, LOST, ATTEMPT = "callback", "node_lost", "attempt"  # the kinds of reaping (a metric's label)
NOTE = "Appel interrompu (panne du serveur) : rappeler le patient"
_TASK_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # as callrouter.store.tasks accepts
BATCH = 100  # records reaped per sweep at most; the next sweep takes the rest


@dataclass(frozen=True)
class Reaped:
    """One record closed: `kind` callback (`task` the task made, None when she had one already)
    or node_lost; or a callback call released: `kind` attempt, `task` back in line."""

    call_id: str
    node: str
    practice: str
    kind: str
    task: TaskView | None = None
    outcome: str | None = None  # the record's, once closed (None: a task released)


def task_id_for(call_id: str) -> str:
    """The one task a lost call may get: its id made from the call's, so a replay finds it."""
    tid = f"lost-{call_id}"
    return tid if _TASK_ID.fullmatch(tid) else "lost-" + hashlib.sha256(call_id.encode()).hexdigest()[:40]


class CallReaper:
    """Implements callrouter.cluster.reaper.ReapStore. `db`: a FencedDatabase of the reaper's lead
    (a Database on its own in tests of the rules alone); `node`: this node, never reaped by itself."""

    def __init__(self, db: Any, node: str, task_expiry: dt.timedelta | Callable[[], dt.timedelta]) -> None:
        """`task_expiry`: how long a callback task made of a reaped call stays open, or what reads
        it at each task made (the settings reload's `controller.callback_expiry_s`)."""
        self._db, self._node = db, node
        self._expiry = task_expiry if callable(task_expiry) else (lambda: task_expiry)

    def sweep(self, grace_s: float, now: dt.datetime, limit: int = BATCH) -> list[Reaped]:
        """Reap the open records of every node gone for longer than `grace_s`, up to `limit`. A
        reaping refused or failing ends the sweep with what was done (its tasks are stored: they
        must be put in line); the next sweep starts again from what is left."""
        out = []
        try:
            for call_id, node in self.lost_calls(grace_s, limit):
                reaped = self.reap(call_id, node, grace_s, now)
                if reaped is not None:
                    out.append(reaped)
            return out + self.release_attempts(grace_s, now)
        except Exception:
            if not out:
                raise
            logger.warning("reaping stopped after %d record(s); the next sweep goes on", len(out), exc_info=True)
            return out

    def release_attempts(self, grace_s: float, now: dt.datetime) -> list[Reaped]:
        """The callback calls a lost node was placing: their tasks back in line (assigned to the
        same secretary, one attempt counted), as that node's own restart would have done."""
        lost = (select(CallbackTask.id).join(NodeLeaseRecord, NodeLeaseRecord.node_id == CallbackTask.attempt_node)
                .where(CallbackTask.state == CALLING, CallbackTask.attempt_node != self._node, _gone(grace_s)))
        with self._db.transaction() as s:
            if s.scalar(lost.limit(1)) is None:
                return []
            gone = list(s.scalars(select(NodeLeaseRecord.node_id)
                                  .where(NodeLeaseRecord.node_id != self._node, _gone(grace_s))
                                  .with_for_update(read=True)))
            rows = list(s.scalars(select(CallbackTask).where(CallbackTask.state == CALLING,
                                                             CallbackTask.attempt_node.in_(gone)).with_for_update()))
            done = []
            for t in rows:
                node = t.attempt_node
                view = release_attempt(s, t, now, SYSTEM, "its node was lost")
                done.append(Reaped(t.call_id or t.id, node, t.practice, ATTEMPT, view))
        for r in done:
            logger.warning("node %s lost: callback task %s was being called; back in line", r.node, r.task.id)
        return done

    def lost_calls(self, grace_s: float, limit: int = BATCH) -> list[tuple[str, str]]:
        """(call id, node) of the open records whose node's lease is gone for longer than the grace."""
        with self._db.transaction() as s:
            rows = s.execute(
                select(CallRecord.id, CallRecord.node)
                .join(NodeLeaseRecord, NodeLeaseRecord.node_id == CallRecord.node)
                .where(CallRecord.ended_at.is_(None), CallRecord.node != self._node, _gone(grace_s))
                .order_by(CallRecord.arrived_at, CallRecord.id).limit(limit))
            return [(r.id, r.node) for r in rows]

    def reap(self, call_id: str, node: str, grace_s: float, now: dt.datetime) -> Reaped | None:
        """Close one record of `node` if that node is still gone and the record still open."""
        with self._db.transaction() as s:
            gone = s.scalar(select(NodeLeaseRecord.node_id)
                            .where(NodeLeaseRecord.node_id == node, _gone(grace_s))
                            .with_for_update(read=True))
            if gone is None or node == self._node:
                return None  # back under a new epoch meanwhile: its calls are its own again
            call = s.get(CallRecord, call_id, with_for_update=True, populate_existing=True)
            if call is None or call.ended_at is not None or call.node != node:
                return None
            reaped = self._close(s, call, now)
        if reaped.task is not None:
            logger.warning("node %s lost: call %s closed, callback task %s made", node, call_id, reaped.task.id)
        else:
            logger.warning("node %s lost: call %s closed (%s)", node, call_id, reaped.kind)
        return reaped

    def _close(self, s: Session, call: CallRecord, now: dt.datetime) -> Reaped:
        number = callable_number(call.caller) if call.answered_at is None else None
        task = None
        if number is None:
            kind, outcome = LOST, "failed"
        else:
            kind, outcome = CALLBACK, "callback_requested"
            had = s.scalar(select(CallbackTask.id).where(CallbackTask.call_id == call.id).limit(1))
            task_id = task_id_for(call.id)
            if had is None and s.get(CallbackTask, task_id) is None:
                task = insert_task(s, task_id, call.practice, number, SOURCE, now, now + self._expiry(),
                                   place_at=call.queued_at or call.arrived_at, queue=call.queue, call_id=call.id,
                                   note=NOTE, created_by=SYSTEM.name, actor=SYSTEM)
        close_in(s, call, outcome, CAUSE, now)
        append(s, SYSTEM, "call.reaped", f"call:{call.id}", now, before={"outcome": None},
               after={"outcome": outcome, "cause": CAUSE},
               details={"node": call.node, "kind": kind, "task": task.id if task else None})
        return Reaped(call.id, call.node, call.practice, kind, task, outcome)


def build_reaper(cluster: Cluster, db: Database, node: str, settings: ClusterSettings,
                 task_expiry_s: float | Callable[[], float],
                 now: Callable[[], dt.datetime], registry: CollectorRegistry, offer: Callable[[list], Any],
                 events: ReapEvents | None = None) -> Leadership | None:
    """The reaper's lead on this node (a service for the tree, after the callback desk's), its
    store fenced by it; None on SQLite, where there is one node and nothing to reap. `offer(tasks)`
    puts the tasks made in this node's line, `events` tells the consoles and MQTT."""
    if cluster.single:
        return None

    def expiry() -> dt.timedelta:  # read at each task made: the settings reload changes it
        return dt.timedelta(seconds=task_expiry_s() if callable(task_expiry_s) else task_expiry_s)

    lead = cluster.lead(REAPER, lambda fence: CallReaper(FencedDatabase(db, fence, settings.lease_seconds), node,
                                                          expiry))
    return lead.service(Reaper(lead.chains, settings.reap_after_seconds, now, cluster.run, offer,
                               ReapMetrics(registry), events))


def _gone(grace_s: float):
    """The lease's row says the node has been gone for longer than `grace_s`, on the database's clock."""
    grace = literal(dt.timedelta(seconds=grace_s), Interval())
    return NodeLeaseRecord.expires_at < func.clock_timestamp() - grace
