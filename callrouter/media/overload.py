"""The edge refuses new calls while the controller lags behind the calls it has.

The controller is one reactor thread. When calls come faster than it can take them, each waits
longer for its answer, the edge gives up on the workers (408, then 503 after its answer timer),
callers retransmit their INVITEs into the backlog, and many more calls fail than the excess
(bench/results/bench_calls.json at 200 calls/s). A call refused at once fails cleanly instead:
the caller's network may try again after `Retry-After`, and the calls already in are answered.

So the guard measures the reactor's lag, how late a timer due every PERIOD_S fires, and once it
was `media.shed_lag_ms` or more LATE_TICKS times in a row (a controller that stays behind, not one
long turn: a worker's start, a garbage collection) tells the edge to refuse every new call
(`EdgeDispatch.shed`: 503 with Retry-After, one RPC, no worker touched). Once the lag stayed under
half of it for HOLD_S, the edge takes new calls again. `media.shed_lag_ms: 0` (the default) turns
the refusing off; the lag is measured all the same (`callrouter_controller_lag_seconds`: what to
read before choosing a value), and `shedding`, `episodes` and the lag are sampled into the metrics
by callrouter.observe.shedding.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from twisted.internet import defer

logger = logging.getLogger("callrouter.media.pool")

PERIOD_S = 0.05
LATE_TICKS = 3
HOLD_S = 1.0


class LagGuard:
    def __init__(self, reactor: Any, shed: Callable[[bool], defer.Deferred], lag_s: float) -> None:
        """`shed(on)`: the edge refuses new calls while on (EdgeDispatch.shed); `lag_s`: the lag
        at which it starts (0: never)."""
        self._reactor, self._shed, self._lag_s = reactor, shed, lag_s
        self._timer: Any = None
        self._due = 0.0
        self._calm_since: float | None = None
        self._late = 0  # ticks late by lag_s or more in a row
        self.shedding = False
        self.episodes = 0
        self.lag_s = 0.0  # the last measured
        self.lag_max_s = 0.0  # the highest measured
        self._window_max = 0.0  # the highest since take_lag_max

    def start(self) -> None:
        if self._timer is None:
            self._next()

    def take_lag_max(self) -> float:
        """The highest lag measured since the last call (a sampler's window)."""
        out, self._window_max = self._window_max, 0.0
        return out

    def stop(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _next(self) -> None:
        self._due = self._reactor.seconds() + PERIOD_S
        self._timer = self._reactor.callLater(PERIOD_S, self._tick)

    def _tick(self) -> None:
        now = self._reactor.seconds()
        lag = self.lag_s = max(0.0, now - self._due)
        self.lag_max_s = max(self.lag_max_s, lag)
        self._window_max = max(self._window_max, lag)
        self._next()
        if self._lag_s <= 0:  # measured, never refused
            return
        self._late = self._late + 1 if lag >= self._lag_s else 0
        if self._late:
            self._calm_since = None
            if not self.shedding and self._late >= LATE_TICKS:
                self.shedding, self.episodes = True, self.episodes + 1
                logger.error("the controller is %.0f ms behind its calls: new calls are refused at the edge (503, "
                             "Retry-After) until it catches up", lag * 1000)
                self._tell(True)
        elif self.shedding:
            if lag >= self._lag_s / 2:
                self._calm_since = None
            elif self._calm_since is None:
                self._calm_since = now
            elif now - self._calm_since >= HOLD_S:
                self.shedding, self._calm_since = False, None
                logger.info("the controller caught up with its calls: the edge takes new calls again")
                self._tell(False)

    def _tell(self, on: bool) -> None:
        self._shed(on).addErrback(lambda failure: logger.warning("edge shed %s failed: %s", on,
                                                                 failure.getErrorMessage()))
