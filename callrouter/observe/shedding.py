"""The controller's lag and the new calls refused for it, sampled into the metrics each second.

callrouter.media.overload measures how late the controller's reactor runs its timers and, with
`media.shed_lag_ms`, has the edge refuse new calls while it stays behind. This sampler reads it:
`callrouter_controller_lag_seconds` (the most in the last second), `callrouter_media_shedding`,
`callrouter_media_shed_episodes_total`, and `callrouter_media_calls_shed_total`, the calls the
edge refused, read from the edge's own count (`refused()`, callrouter.sip.dispatch) during an
episode and once after it: no RPC while nothing is refused.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Protocol

from twisted.application.internet import TimerService
from twisted.internet import defer

from callrouter.metrics import Metrics

logger = logging.getLogger(__name__)


class Guard(Protocol):
    """What is read of callrouter.media.overload.LagGuard."""

    shedding: bool
    episodes: int

    def take_lag_max(self) -> float: ...


class ShedSampler(TimerService):
    def __init__(self, guard: Callable[[], Guard | None], metrics: Metrics,
                 refused: Callable[[], defer.Deferred] | None, interval: float = 1.0) -> None:
        """`guard()`: the pool's guard (None before the pool has one); `refused()`: fires with the
        edge's count of calls refused since it started, None if it did not answer (None: no edge)."""
        super().__init__(interval, self.sample)
        self.setName("shed-sampler")
        self._guard, self._metrics, self._refused = guard, metrics, refused
        self._episodes = 0
        self._counted: int | None = None  # the edge's count already in the counter
        self._read_once_more = False
        self._reading = False

    def sample(self) -> None:
        guard = self._guard()
        if guard is None:
            return
        m = self._metrics
        m.controller_lag.set(guard.take_lag_max())
        m.shedding.set(1 if guard.shedding else 0)
        if guard.episodes > self._episodes:
            m.shed_episodes.inc(guard.episodes - self._episodes)
            self._episodes = guard.episodes
        if guard.shedding or self._read_once_more or self._counted is None:
            self._read_once_more = guard.shedding  # the refusals of an episode's last second too
            self._read_edge()

    def _read_edge(self) -> None:
        if self._refused is None or self._reading:
            return
        self._reading = True
        d = self._refused()
        d.addCallback(self._edge_count)
        d.addErrback(lambda failure: logger.warning("edge's refused calls not read: %s", failure.getErrorMessage()))
        d.addBoth(self._done_reading)

    def _done_reading(self, _: Any) -> None:
        self._reading = False

    def _edge_count(self, count: int | None) -> None:
        if count is None:
            self._read_once_more = True  # the edge did not answer: read again next time
            return
        if self._counted is not None:
            # A count below the last one is a restarted edge, counting from 0 again.
            added = count - self._counted if count >= self._counted else count
            if added:
                self._metrics.calls_shed.inc(added)
        self._counted = count
