"""Series sampled from the controller's own state each second, on the reactor thread (nothing here
blocks): the labelled counters seeded from the dialplans (at start and after each reload), the
seconds the secretaries spend in each state, the oldest call waiting in each queue, the practices
open with nobody logged in, and (every `ROTA_EVERY` samples) when each on-call rota ends.

It reads the ACD's book (who covers which queue, who waits) and the dialplans in force; it changes
neither.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Protocol

from twisted.application.internet import TimerService

from callrouter.domain.model import Dialplan
from callrouter.escalation.metrics import EscalationMetrics
from callrouter.metrics import Metrics
from callrouter.observe.coverage import rota_end, staffing
from callrouter.observe.service_level import params_of
from callrouter.ports import utc_from_clock

logger = logging.getLogger(__name__)

OFFLINE = "offline"
ROTA_EVERY = 60  # samples between two readings of the rotas (they change with a reload or a feed)


class Book(Protocol):
    """What the sampler reads of the ACD (callrouter.controller.queues.QueueBook)."""

    def secretaries(self) -> list[Any]: ...  # each with .state (callrouter.domain.serving)

    def covering(self, practice: str, queue: str, line: str | None = None) -> list[Any]: ...

    def waiting(self) -> list[Any]: ...  # callrouter.domain.serving.Waiting


class StateSampler(TimerService):
    def __init__(self, metrics: Metrics, dialplans: Callable[[], Mapping[str, Dialplan]], book: Book,
                 reactor: Any, interval: float = 1.0) -> None:
        super().__init__(interval, self.sample)
        self.clock = reactor
        self.setName("state-sampler")
        self._metrics, self._dialplans, self._book, self._reactor = metrics, dialplans, book, reactor
        self._seen: Mapping[str, Dialplan] | None = None
        self._queues: set[tuple[str, str]] = set()
        self._last: float | None = None
        self._samples = 0

    def sample(self) -> None:
        dialplans = self._dialplans()
        if dialplans is not self._seen:
            self._seed(dialplans)
        now = self._reactor.seconds()
        self._time_in_state(now)
        self._oldest_waits(dialplans, now)
        self._staffing(dialplans)
        if self._samples % ROTA_EVERY == 0:
            self._rotas(dialplans)
        self._samples += 1

    def _seed(self, dialplans: Mapping[str, Dialplan]) -> None:
        """Every series the dialplans make known, at 0; the gauges of practices gone removed."""
        gone = set(self._seen or ()) - set(dialplans)
        self._metrics.seed(dialplans, lambda d: (params_of(d).sl_threshold_s, params_of(d).sl_target))
        escalations = EscalationMetrics.of(self._metrics.registry)
        if escalations is not None:
            escalations.seed(dialplans)
        self._metrics.forget(gone)
        if self._seen is not None:
            self._samples = 0  # read the rotas of the new rules now
        self._seen = dialplans

    def _time_in_state(self, now: float) -> None:
        elapsed, self._last = (now - self._last if self._last is not None else 0.0), now
        if elapsed <= 0:
            return
        for secretary in self._book.secretaries():
            self._metrics.secretary_state_seconds.labels(secretary.state).inc(elapsed)

    def _oldest_waits(self, dialplans: Mapping[str, Dialplan], now: float) -> None:
        """Calls only: a callback task keeps its place in line from its call, often long before."""
        oldest: dict[tuple[str, str], float] = {(p, q): now for p, d in dialplans.items() for q in d.queues}
        for w in self._book.waiting():
            if getattr(w.session, "task_id", None) is None:
                key = (w.practice, w.queue)
                oldest[key] = min(oldest.get(key, now), w.enqueued_at)
        gauge = self._metrics.queue_oldest_wait
        for key in self._queues - set(oldest):
            _remove(gauge, *key)
        for (practice, queue), since in oldest.items():
            gauge.labels(practice, queue).set(max(0.0, now - since))
        self._queues = set(oldest)

    def _staffing(self, dialplans: Mapping[str, Dialplan]) -> None:
        now = utc_from_clock(self._reactor)
        for practice, dialplan in dialplans.items():
            try:
                is_open, unstaffed = staffing(dialplan, now, self._staffed)
            except Exception:  # a calendar bug must not stop the other series
                logger.exception("practice %s: opening state not sampled", practice)
                continue
            self._metrics.practice_open.labels(practice).set(int(is_open))
            self._metrics.practice_unstaffed.labels(practice).set(int(unstaffed))

    def _staffed(self, practice: str, queue: str, line: str) -> bool:
        return any(s.state != OFFLINE for s in self._book.covering(practice, queue, line))

    def _rotas(self, dialplans: Mapping[str, Dialplan]) -> None:
        now = utc_from_clock(self._reactor)
        for practice, dialplan in dialplans.items():
            try:
                end = rota_end(dialplan, now)
            except Exception:
                logger.exception("practice %s: on-call rota end not sampled", practice)
                continue
            if end is None:
                _remove(self._metrics.rota_end, practice)
            else:
                self._metrics.rota_end.labels(practice).set(end.timestamp())


def _remove(gauge: Any, *labels: str) -> None:
    try:
        gauge.remove(*labels)
    except KeyError:
        pass
