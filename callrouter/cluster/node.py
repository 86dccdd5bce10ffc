"""This node's lease: acquired at start, renewed every `cluster.renew_seconds` on the reactor's
clock, its store calls in the thread pool; what the node believes of it is callrouter.cluster.lease.

Losing it (the database unreachable for a lease's length, the lease expired, a newer process of
the same node name) is logged and counted once. An expired lease is acquired again under a new
epoch at the next tick; a node displaced by a newer process of its own name stays out. Stopping
releases the lease, so that the other nodes need not wait for it to expire.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, task

from callrouter.cluster import lease
from callrouter.cluster.metrics import ClusterMetrics
from callrouter.cluster.peers import UnsharedPeers
from callrouter.cluster.ports import LeaseStore
from callrouter.ports import RunBlocking

logger = logging.getLogger(__name__)


class NodeLease(Service):
    name = "node-lease"

    def __init__(self, store: LeaseStore, node: str, timing: lease.LeaseTiming, clock: Any,
                 run_blocking: RunBlocking, metrics: ClusterMetrics, peers: UnsharedPeers | None = None) -> None:
        """`peers`: read after each tick holding the lease (a node without the shared desk)."""
        self.node = node
        self._peers = peers
        self._store, self._timing, self._clock, self._run = store, timing, clock, run_blocking
        self._metrics = metrics
        self._state = lease.NodeState()
        self._failing = False
        self._held_epoch: int | None = None  # the epoch it held when it last looked
        self._waiting: list[defer.Deferred[None]] = []
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = clock
        metrics.held.set_function(lambda: 1.0 if self.holds() else 0.0)
        metrics.epoch.set_function(lambda: float(self._state.epoch or 0))

    # --- what the other parts read (the reactor thread, or the store's threads) -------------------

    def holds(self) -> bool:
        return self._state.holds(self._clock.seconds())

    @property
    def epoch(self) -> int | None:
        return self._state.epoch

    @property
    def out(self) -> bool:
        return self._state.phase is lease.Phase.OUT

    def when_held(self) -> "defer.Deferred[None]":
        """Fires once this node holds its lease (at once if it does)."""
        if self.holds():
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiting.append(d)
        return d

    # --- service ---------------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._loop.start(self._timing.renew_s, now=True).addErrback(
            lambda f: logger.error("node %s: lease renewals stopped: %s", self.node, f.getTraceback()))

    @defer.inlineCallbacks
    def stopService(self):
        super().stopService()
        if self._loop.running:
            self._loop.stop()
        state = self._state
        if state.phase is lease.Phase.HELD and state.epoch is not None:
            self._state = lease.NodeState(why="stopped")
            try:
                yield self._run(self._store.release, self.node, state.epoch)
                logger.info("node %s released its lease (epoch %s)", self.node, state.epoch)
            except Exception as exc:
                logger.warning("node %s: lease not released (%s); it expires by itself", self.node, exc)

    # --- the tick --------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def _tick(self):
        before, then = self._state, self._clock.seconds()
        action = before.due()
        try:
            if action == lease.ACQUIRE:
                got = yield self._run(self._store.acquire, self.node, self._timing.lease_s,
                                      socket.gethostname(), os.getpid())
                if not self.running:  # stopped meanwhile: the lease expires by itself
                    return
                self._state = lease.acquired(self._state, got.epoch, then, self._timing)
                log = logger.warning if got.displaced else logger.info
                log("node %s holds its lease, epoch %s%s", self.node, got.epoch,
                    ": the previous epoch's lease had not expired, its process (if alive) is fenced out"
                    if got.displaced else "")
            elif action == lease.RENEW:
                outcome = yield self._run(self._store.renew, self.node, before.epoch, self._timing.lease_s)
                self._state = lease.renewed(self._state, outcome, then, self._timing)
            if self._failing:
                logger.warning("node %s reaches the database again", self.node)
            self._failing = False
        except Exception as exc:  # the database unreachable: the belief runs out on time
            if not self._failing:
                logger.warning("node %s: lease %s failed (%s); held until it runs out", self.node, action, exc)
            self._failing = True
        self._after()
        if self._peers is not None and self.holds() and self.running:
            yield self._peers.check()

    def _after(self) -> None:
        why = lease.loss(self._held_epoch, self._state, self._clock.seconds())
        if why is not None:
            self._metrics.lost.labels(_reason(why)).inc()
            logger.error("node %s lost its lease (epoch %s): %s; it writes nothing that needs it%s", self.node,
                         self._held_epoch, why, "" if self.out else " until it holds one again")
        self._held_epoch = self._state.epoch if self.holds() else None
        if self.out and self._loop.running:
            self._loop.stop()
        if self.holds():
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(None)


def _reason(why: str) -> str:
    """The metric's bounded label for a loss."""
    if "newer process" in why:
        return "superseded"
    if "expired" in why:
        return "expired"
    return "not_renewed"
