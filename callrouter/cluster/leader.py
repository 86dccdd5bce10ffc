"""One node at a time leads a role (the escalation engine): the lead is a row naming the node and
the epoch of its lease, taken over only once that lease is gone from the database.

`Leadership` tries every `cluster.renew_seconds`, once this node holds its lease: taking the lead
starts its follower (the engine resumes every open chain, as after a restart); while leading, each
tick lets the follower reconcile (chains started by other nodes, acknowledgements recorded
elsewhere); losing the lead, or this node's lease, stops it. Stopping the service gives the lead
up, so a survivor takes it at its next tick instead of after the lease's length.

`LeadFence` is the lead as the store's threads read it: the token its writes carry
(callrouter.store.leases.FencedDatabase checks it in the same transaction as the writes). It is
None as soon as this node stops believing it holds its lease, before any tick notices: the
follower asks it before each send, so it stops sending at once.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.python import failure

from callrouter.cluster.lease import LeaseTiming
from callrouter.cluster.metrics import ClusterMetrics
from callrouter.cluster.ports import Fence, LeaseStore
from callrouter.ports import RunBlocking

logger = logging.getLogger(__name__)


class NodeView(Protocol):
    """This node's lease as the lead reads it (callrouter.cluster.node.NodeLease, or SingleNode)."""

    node: str

    def holds(self) -> bool: ...

    @property
    def epoch(self) -> int | None: ...

    def when_held(self) -> "defer.Deferred[None]": ...


class Follower(Protocol):
    """What a role's lead starts and stops (callrouter.escalation.engine.EscalationEngine)."""

    ready: "defer.Deferred[None]"   # set by startService: fires once resumed

    def startService(self) -> None: ...

    def stopService(self) -> Any: ...

    def reconcile(self) -> Any: ...


class LeadFence:
    """Implements callrouter.cluster.ports.FenceSource for one role."""

    def __init__(self, role: str, node: NodeView) -> None:
        self.role = role
        self._node = node
        self._token: Fence | None = None

    def current(self) -> Fence | None:
        token = self._token
        if token is None or not self._node.holds() or self._node.epoch != token.epoch:
            return None
        return token

    def refused(self, fence: Fence, reason: str) -> None:
        if self._token == fence:  # one assignment: safe from any thread
            self._token = None
            logger.error("node %s: the database refused its %s lead (term %s): %s", fence.node, fence.role,
                         fence.term, reason)

    def hold(self, token: Fence | None) -> None:
        """Set by the Leadership only."""
        self._token = token


class Leadership(Service):
    def __init__(self, fence: LeadFence, node: NodeView, store: LeaseStore, follower: Follower,
                 timing: LeaseTiming, clock: Any, run_blocking: RunBlocking, metrics: ClusterMetrics) -> None:
        self.role = fence.role
        self.name = f"{fence.role}-lead"
        self._fence, self._node, self._store, self._follower = fence, node, store, follower
        self._timing, self._clock, self._run, self._metrics = timing, clock, run_blocking, metrics
        self._leading: Fence | None = None
        self._resumed = False
        self._failing = False
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = clock
        # No I/O: steps down on time even while a tick waits on a database that does not answer.
        self._guard = task.LoopingCall(self._check)
        self._guard.clock = clock

    @property
    def leading(self) -> bool:
        return self._leading is not None

    # --- service ---------------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._node.when_held().addCallback(lambda _: self._start_loop())

    def _start_loop(self) -> None:
        if self.running and not self._loop.running:
            for loop in (self._loop, self._guard):
                loop.start(self._timing.renew_s, now=True).addErrback(
                    lambda f: logger.error("%s lead: a loop stopped: %s", self.role, f.getTraceback()))

    @defer.inlineCallbacks
    def stopService(self):
        super().stopService()
        for loop in (self._loop, self._guard):
            if loop.running:
                loop.stop()
        held = self._leading
        if held is not None:
            yield self._step_down("this node stops")
            try:
                yield self._run(self._store.release_lead, self.role, held.node, held.epoch)
            except Exception as exc:
                logger.warning("%s lead not given up (%s): it goes with this node's lease", self.role, exc)

    # --- the tick --------------------------------------------------------------------------------

    def _check(self) -> Any:
        if self._leading is not None and self._fence.current() is None:
            return self._step_down("this node's lease ran out, or the database refused the lead")
        return None

    @defer.inlineCallbacks
    def _tick(self):
        yield self._check()
        epoch = self._node.epoch
        if not self._node.holds() or epoch is None:
            return
        try:
            term = yield self._run(self._store.take_lead, self.role, self._node.node, epoch, self._timing.renew_s)
        except Exception as exc:
            if not self._failing:
                logger.warning("%s lead: not read (%s); tried again in %.1f s", self.role, exc, self._timing.renew_s)
            self._failing = True
            return
        self._failing = False
        if not self.running:
            return
        token = Fence(self.role, self._node.node, epoch, term) if term is not None else None
        if token is None or not self._node.holds() or self._node.epoch != epoch:
            if self._leading is not None:
                yield self._step_down("another node leads")
            return
        if self._leading is not None and self._leading != token:
            yield self._step_down("the lead changed hands meanwhile")
        if self._leading is None:
            self._lead(token)
        elif self._resumed:
            try:
                yield self._follower.reconcile()
            except Exception as exc:  # the next tick tries again
                logger.warning("%s lead: reconcile failed: %s", self.role, exc)

    def _lead(self, token: Fence) -> None:
        self._leading, self._resumed = token, False
        self._fence.hold(token)
        self._metrics.leading.labels(self.role).set(1)
        self._metrics.lead_changes.labels(self.role, "taken").inc()
        logger.warning("node %s leads %s now (term %s, epoch %s)", token.node, self.role, token.term, token.epoch)
        self._follower.startService()
        self._follower.ready.addBoth(self._resume_done, token)

    def _resume_done(self, result: Any, token: Fence) -> None:
        if isinstance(result, failure.Failure):  # reconciling takes the chains it missed
            logger.error("%s lead: resume failed: %s", self.role, result.getErrorMessage())
        if self._leading == token:
            self._resumed = True

    def _step_down(self, why: str):
        held, self._leading = self._leading, None
        self._fence.hold(None)
        self._metrics.leading.labels(self.role).set(0)
        self._metrics.lead_changes.labels(self.role, "lost").inc()
        logger.warning("node %s does not lead %s any more (term %s): %s", held.node if held else "?", self.role,
                       held.term if held else "?", why)
        return defer.maybeDeferred(self._follower.stopService).addErrback(
            lambda f: logger.error("%s lead: follower did not stop cleanly: %s", self.role, f.getErrorMessage()))
