"""The reaper: on the one node leading the `reaper` role, the calls of a node gone for good are
closed, its waiting callers turned into callback tasks this node puts in its line.

It is the role's follower (callrouter.cluster.leader.Follower): taking the lead sweeps once, then
each tick of the lead (every `cluster.renew_seconds`) sweeps again. A sweep (`ReapStore.sweep`,
callrouter.store.reaping) closes the open records of every node whose lease has been gone for
longer than `cluster.reap_after_seconds`, each in a transaction fenced by the lead; the tasks it
made are handed to `offer` on the reactor (the node's callback desk puts them in line at the
caller's place, and the consoles are told). Only PostgreSQL has nodes to reap: on SQLite there is
one node, and no reaper (callrouter.store.reaping.build_reaper).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable, Protocol, Sequence

from prometheus_client import CollectorRegistry, Counter
from twisted.internet import defer

from callrouter.cluster.ports import Fenced
from callrouter.ports import RunBlocking

logger = logging.getLogger(__name__)

REAPER = "reaper"  # the role's name in the cluster's leads
KINDS = ("callback", "node_lost", "attempt")
CAUSE = "node_lost"  # the cause of the records it closes


class ReapStore(Protocol):
    def sweep(self, grace_s: float, now: dt.datetime) -> Sequence[Any]:
        """Close the lost records (fenced), returning what was done: items with `kind`, `task`."""
        ...


class ReapEvents(Protocol):
    """What the consoles and the MQTT subscribers are told (callrouter.events: the notifier)."""

    def task_changed(self, task: Any) -> None: ...

    def call_ended(self, call_id: str, practice: str, outcome: str, cause: str | None = None) -> None: ...


class ReapMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.reaped = Counter("callrouter_calls_reaped_total",
                              "Calls of a lost node closed by this node, by kind (callback: a waiting caller's task; "
                              "attempt: a callback call it was placing, its task back in line)",
                              ("kind",), registry=registry)
        for kind in KINDS:
            self.reaped.labels(kind)


class Reaper:
    """Implements callrouter.cluster.leader.Follower."""

    def __init__(self, store: ReapStore, grace_s: float, now: Callable[[], dt.datetime], run_blocking: RunBlocking,
                 offer: Callable[[list], Any], metrics: ReapMetrics, events: ReapEvents | None = None) -> None:
        """`offer(tasks)`: put the tasks made in this node's line; `events`: each call closed is
        `ended` (its node said nothing more of it) and each task made or released announced."""
        self._store, self._grace_s, self._now, self._run = store, grace_s, now, run_blocking
        self._offer, self._metrics, self._events = offer, metrics, events
        self.running = False
        self.ready: defer.Deferred = defer.succeed(None)

    def startService(self) -> None:
        self.running = True
        self.ready = self.reconcile()

    def stopService(self) -> None:
        self.running = False

    @defer.inlineCallbacks
    def reconcile(self):
        if not self.running:
            return
        try:
            done = yield self._run(self._store.sweep, self._grace_s, self._now())
        except Fenced as exc:  # the lead is lost: the Leadership stops this follower
            logger.warning("reaper: sweep refused: %s", exc)
            return
        except Exception as exc:  # the next tick tries again
            logger.warning("reaper: sweep failed (%s); tried again at the next tick", exc)
            return
        tasks = [r.task for r in done if r.task is not None]
        for r in done:
            self._metrics.reaped.labels(r.kind).inc()
            if self._events is not None and r.outcome is not None:
                self._events.call_ended(r.call_id, r.practice, r.outcome, CAUSE)
        if tasks:
            try:
                self._offer(tasks)
            except Exception:
                logger.exception("reaper: %d callback task(s) stored but not put in line", len(tasks))
            for view in tasks if self._events is not None else ():
                self._events.task_changed(view)
