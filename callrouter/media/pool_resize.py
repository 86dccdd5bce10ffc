"""The pool's size, kept where callrouter.media.sizing says, and the edge kept in step with it.

- Growth: after every new call, worker ready or worker gone (at most every REPLAN_S) and every
  second, the plan is read again; workers are started (or retiring ones put back) at once,
  at most MAX_STARTING starting together (the next ones as those become ready).
- Retirement: an idle worker is first taken out of the edge's dispatcher (`edge.deactivate`); once
  the edge answered, calls already on their way get `retire_grace_seconds`, then the worker is
  told to `retire` (it refuses new calls with 503 and exits once its last leg ended). A worker is
  never stopped while it holds a call. If the edge does not answer, the worker stays.
- The edge activates a worker once it is ready (`edge.activate`), rather than after its next
  OPTIONS probe; the positions no worker holds yet are disabled there once, after the first worker
  is ready, so that the edge does not probe ports nobody listens on (each probe of a silent port is
  a transaction held until its timeout: with hundreds of positions, the edge's memory).
- At `workers_max`: logged once as an error each time it is reached (`at_max`, `at_max_episodes`
  for the metrics), and when the free slots are all needed by callers already in (each may still
  need her secretary's leg), new calls are refused at the edge (every worker deactivated) until a
  worker's worth of slots is free again (`admitting`).
- While the controller lags behind its calls (`media.shed_lag_ms`), the edge refuses new calls with
  503 and Retry-After (`guard`, callrouter.media.overload).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Any, Protocol

from twisted.internet import defer, task

from callrouter.media import protocol as p
from callrouter.media import sizing
from callrouter.media.overload import LagGuard

logger = logging.getLogger("callrouter.media.pool")

ARRIVAL_WINDOW_S = 2.0
TICK_S = 1.0
# At most this often after a change: a plan reads every worker position (hundreds), and at 100
# calls/s a plan per call cost the controller a fifth of a core; a worker takes longer to start.
REPLAN_S = 0.1
# Workers starting at once. A start costs about 0.07 s of CPU (the interpreter, the imports,
# pjsua's init): a burst that wants fifty more workers must not take both cores from the calls.
MAX_STARTING = 6


class EdgeDispatch(Protocol):
    """The edge's dispatcher as the pool keeps it (implemented by callrouter.sip.dispatch)."""

    def activate(self, port: int) -> defer.Deferred:
        """The edge may send calls to the worker on `port`; fires True once it does."""

    def deactivate(self, port: int) -> defer.Deferred:
        """The edge sends no new call to `port` (its OPTIONS probes do not bring it back); fires
        True once it does, False if the edge did not answer."""

    def shed(self, on: bool) -> defer.Deferred:
        """While `on`, the edge refuses every new call (503, Retry-After): the controller lags
        (callrouter.media.overload)."""


class NoEdge:
    """No edge (sip.enabled false): callers reach the workers directly."""

    def activate(self, port: int) -> defer.Deferred:
        return defer.succeed(True)

    def deactivate(self, port: int) -> defer.Deferred:
        return defer.succeed(True)

    def shed(self, on: bool) -> defer.Deferred:
        return defer.succeed(True)


class Resizer:
    def __init__(self, pool: Any, edge: EdgeDispatch, reactor: Any, callers_per_worker: int = 0) -> None:
        """`callers_per_worker`: the edge's limit of callers sent to one worker (0: the cap)."""
        self._pool, self._edge, self._reactor = pool, edge, reactor
        self._sizing = dataclasses.replace(pool.settings.sizing, callers_per_worker=callers_per_worker)
        self._arrivals: collections.deque[float] = collections.deque()
        self._loop = task.LoopingCall(self.resize)
        self._loop.clock = reactor
        self._soon: Any = None
        self._planned_at = float("-inf")
        self._sized = False   # a plan ran with the cap known (when_ready waits for it)
        self._swept = False   # the unused positions were disabled at the edge
        self.at_max = False
        self.at_max_episodes = 0
        self.admitting = True
        self.capacity: sizing.Capacity | None = None
        shed = getattr(edge, "shed", None)
        self.guard = LagGuard(reactor, shed, pool.settings.shed_lag_ms / 1000.0 if shed else 0.0)

    # -- what the pool tells it --------------------------------------------------------------

    def start(self) -> None:
        self.resize()
        self._loop.start(TICK_S, now=False)
        self.guard.start()

    def stop(self) -> None:
        self.guard.stop()
        if self._loop.running:
            self._loop.stop()
        if self._soon is not None and self._soon.active():
            self._soon.cancel()

    def follow(self, settings: Any) -> None:
        """New sizing settings (a settings reload: workers_min, workers_max, legs_wanted, spare
        calls...): planned with from now on (the pool's `settings` replaced by the caller)."""
        self._sizing = dataclasses.replace(settings.sizing, callers_per_worker=self._sizing.callers_per_worker)
        self.changed()

    def arrival(self) -> None:
        self._arrivals.append(self._reactor.seconds())
        self.changed()

    def changed(self) -> None:
        """Look at the plan again soon: on the next reactor turn, or REPLAN_S after the last plan
        (once, however many changes meanwhile)."""
        if self._soon is None or not self._soon.active():
            delay = max(0.0, self._planned_at + REPLAN_S - self._reactor.seconds())
            self._soon = self._reactor.callLater(delay, self.resize)

    def worker_ready(self, slot: Any) -> None:
        if self.admitting:
            self._activate(slot)
        self.resize()
        if not self._swept:
            self._swept = True
            used = {s.sip_port for s in self._pool.slots() if s.state != "down"}
            settings = self._pool.settings
            for port in (settings.sip_port(i) for i in range(settings.workers_max)):
                if port not in used:
                    self._edge.deactivate(port).addErrback(self._failed, "deactivate", slot)

    def started_size_reached(self) -> bool:
        return self._sized

    def arrival_rate(self, now: float) -> float:
        while self._arrivals and self._arrivals[0] < now - ARRIVAL_WINDOW_S:
            self._arrivals.popleft()
        return len(self._arrivals) / ARRIVAL_WINDOW_S

    # -- the plan ----------------------------------------------------------------------------

    def resize(self) -> None:
        pool = self._pool
        if not pool.running:
            return
        now = self._planned_at = self._reactor.seconds()
        views = [_view(s, pool.callers_on(s)) for s in pool.slots()]
        plan = sizing.plan(views, pool.waiting(), self.arrival_rate(now), now, pool.cap, self._sizing)
        self.capacity = plan.capacity
        slots = pool.slots()
        for index in plan.revive:
            self._revive(slots[index])
        starting = sum(1 for s in pool.slots() if s.state == "starting")
        for _ in range(min(plan.start, max(0, MAX_STARTING - starting))):
            if pool._start_one() is None:
                break
        for index in plan.retire:
            self._retire(slots[index])
        if pool.cap is not None:
            self._sized = True
        self._limits(plan)

    def _limits(self, plan: sizing.Plan) -> None:
        s, c = self._pool.settings, plan.capacity
        if plan.at_max and not self.at_max:
            self.at_max_episodes += 1
            logger.error("media pool at media.workers_max (%s workers): %s spare call(s) of the %s wanted ahead "
                         "of the traffic; raise media.workers_max or add a node", s.workers_max, c.spare_calls,
                         c.floor)
        elif self.at_max and not plan.at_max:
            logger.info("media pool below media.workers_max again")
        self.at_max = plan.at_max
        cap = self._pool.cap or 1
        if not plan.admit and self.admitting:
            self.admitting = False
            logger.error("media pool full: the %s free slot(s) are kept for the %s caller(s) waiting for their "
                         "secretary's leg; new calls are refused at the edge", c.free_slots, c.waiting)
            for slot in self._pool.slots():
                if slot.state == "ready":
                    self._edge.deactivate(slot.sip_port).addErrback(self._failed, "deactivate", slot)
        elif plan.admit and not self.admitting and c.free_slots - c.waiting >= cap:
            self.admitting = True
            logger.info("media pool takes new calls again (%s free slots)", c.free_slots)
            for slot in self._pool.slots():
                if slot.state == "ready":
                    self._activate(slot)

    # -- retirement --------------------------------------------------------------------------

    def _retire(self, slot: Any) -> None:
        slot.state, slot.retire_phase = "retiring", "edge"
        slot.generation += 1
        generation = slot.generation
        logger.info("media worker %s idle for %ss: retiring it", slot.name, self._pool.settings.idle_retire_seconds)
        d = self._edge.deactivate(slot.sip_port)
        d.addErrback(lambda failure: self._failed(failure, "deactivate", slot) or False)
        d.addCallback(self._out_of_edge, slot, generation)

    def _out_of_edge(self, done: bool, slot: Any, generation: int) -> None:
        if slot.generation != generation or slot.state != "retiring":
            return
        if not done:
            logger.warning("the edge did not take media worker %s out of its dispatcher: keeping it", slot.name)
            self._back(slot)
            return
        slot.retire_phase = "grace"
        slot.timer = self._reactor.callLater(self._pool.settings.retire_grace_seconds, self._send_retire, slot,
                                             generation)

    def _send_retire(self, slot: Any, generation: int) -> None:
        slot.timer = None
        if slot.generation != generation or slot.state != "retiring":
            return
        slot.retire_phase = "sent"
        self._pool._write(slot, p.Retire())

    def _revive(self, slot: Any) -> None:
        slot.generation += 1
        if slot.timer is not None and slot.timer.active():
            slot.timer.cancel()
        slot.timer = None
        logger.info("media worker %s needed again: no longer retiring", slot.name)
        self._back(slot)
        if self.admitting:
            self._activate(slot)

    def _back(self, slot: Any) -> None:
        slot.state, slot.retire_phase = "ready", ""
        slot.idle_since = self._reactor.seconds() if not slot.legs else None

    def _activate(self, slot: Any) -> None:
        self._edge.activate(slot.sip_port).addErrback(self._failed, "activate", slot)

    def _failed(self, failure: Any, what: str, slot: Any) -> None:
        logger.warning("edge %s of media worker %s failed: %s", what, slot.name, failure.getErrorMessage())


def _view(slot: Any, callers: int) -> sizing.WorkerView:
    state = slot.state
    if state == "retiring":
        state = sizing.REVIVABLE if slot.retire_phase in ("edge", "grace") else sizing.RETIRING
    elif state == "stopping":
        state = sizing.RETIRING
    elif state == "down" and slot.timer is not None:
        state = sizing.STARTING  # restarting after a crash: it will be back
    return sizing.WorkerView(slot.index, state, slot.cap, slot.used, slot.idle_since, callers)
