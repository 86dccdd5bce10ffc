"""The pool's gauges, sampled each second: workers ready, restarts (a worker started again after it
died: a retired worker's position taken again later is no restart), call slots used and free (legs
the ready workers hold, with the slots their pjsua keeps a while after a leg hung up, and can still
take: a bridged call holds two), the spare calls and their floor, whether the pool is held at
media.workers_max (and how many times it got there), and the call recorder's backlog."""

from __future__ import annotations

from typing import Protocol

from twisted.application.internet import TimerService

from callrouter.media.pool import MediaPool
from callrouter.metrics import Metrics


class Backlog(Protocol):
    def pending(self) -> int: ...


class PoolMetrics(TimerService):
    """Samples the pool each second: workers ready, restarts, call slots, sizing, backlog."""

    def __init__(self, pool: MediaPool, metrics: Metrics, recorder: Backlog):
        self.pool, self.metrics, self.recorder = pool, metrics, recorder
        self._restarts: dict[str, int] = {}
        self._episodes = 0
        super().__init__(1.0, self.sample)
        self.setName("pool-metrics")

    def sample(self) -> None:
        ready = used = free = 0
        for status in self.pool.status():
            if status.restarts > self._restarts.get(status.name, 0):
                self.metrics.worker_restarts.inc(status.restarts - self._restarts.get(status.name, 0))
            self._restarts[status.name] = status.restarts
            if status.state == "ready":
                ready += 1
                used += status.legs + status.held
                free += max(0, status.cap - status.legs - status.held)
        resizer = getattr(self.pool, "resizer", None)  # a pool without sizing (a test's) has none
        if resizer is not None:
            if resizer.capacity is not None:
                self.metrics.spare_calls.labels("available").set(resizer.capacity.spare_calls)
                self.metrics.spare_calls.labels("floor").set(resizer.capacity.floor)
            self.metrics.pool_at_max.set(1 if resizer.at_max else 0)
            if resizer.at_max_episodes > self._episodes:
                self.metrics.workers_max_reached.inc(resizer.at_max_episodes - self._episodes)
                self._episodes = resizer.at_max_episodes
        self.metrics.workers.set(ready)
        self.metrics.call_slots.labels("used").set(used)
        self.metrics.call_slots.labels("free").set(free)
        self.metrics.record_backlog.set(self.recorder.pending())
