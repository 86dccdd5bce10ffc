"""The pool's gauges, sampled each second: workers ready, restarts (a slot's process changed), call
slots used and free (legs the ready workers hold and can still take: a bridged call holds two), and
the call recorder's backlog."""

from __future__ import annotations

from typing import Protocol

from twisted.application.internet import TimerService

from callrouter.media.pool import MediaPool
from callrouter.metrics import Metrics


class Backlog(Protocol):
    def pending(self) -> int: ...


class PoolMetrics(TimerService):
    """Samples the pool each second: workers ready, restarts (a slot's process changed), call slots, backlog."""

    def __init__(self, pool: MediaPool, metrics: Metrics, recorder: Backlog):
        self.pool, self.metrics, self.recorder = pool, metrics, recorder
        self._pids: dict[str, int] = {}
        super().__init__(1.0, self.sample)
        self.setName("pool-metrics")

    def sample(self) -> None:
        ready = used = free = 0
        for status in self.pool.status():
            if status.state == "ready":
                ready += 1
                used += status.legs
                free += max(0, status.cap - status.legs)
                previous = self._pids.get(status.name)
                if previous is not None and previous != status.pid:
                    self.metrics.worker_restarts.inc()
                self._pids[status.name] = status.pid
        self.metrics.workers.set(ready)
        self.metrics.call_slots.labels("used").set(used)
        self.metrics.call_slots.labels("free").set(free)
        self.metrics.record_backlog.set(self.recorder.pending())
