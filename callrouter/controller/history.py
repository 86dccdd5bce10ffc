"""The secretaries' state history written off the reactor thread, in order, retried through a
database outage.

The desk runs on the reactor thread and must never wait for the database: it hands each state
change to `add`, which only queues it. One batch at a time (everything queued, up to `batch`) is
written on the thread pool; the next batch waits for it, so rows are stored in the order they
happened. A write failing because the database is not reachable (callrouter.controller.recorder's
`is_transient`) is retried with a doubling delay up to `max_backoff_s`, the rows kept meanwhile. A
batch refused on its merits is written again one row at a time, so that only the row refused is
logged and dropped (it would never succeed). Stopping writes what is queued, waiting at most
`stop_timeout_s`.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from twisted.application.service import Service
from twisted.internet import defer

from callrouter.controller.recorder import is_transient
from callrouter.domain.team import StateChange
from callrouter.ports import RunBlocking

logger = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.2


class StateHistory(Service):
    name = "state-history"

    def __init__(self, append: Callable[[Sequence[StateChange]], None], run_blocking: RunBlocking,
                 reactor: Any, max_backoff_s: float = 10.0, batch: int = 500, stop_timeout_s: float = 10.0):
        """`append(rows)`: the blocking store write (callrouter.store.team.TeamRepository.append_states)."""
        self._append = append
        self._run_blocking = run_blocking
        self._reactor = reactor
        self._max_backoff = max_backoff_s
        self._batch = batch
        self._stop_timeout = stop_timeout_s
        self._pending: list[StateChange] = []
        self._writing = False  # a batch is being written, or waits for its retry
        self._backoff = FIRST_BACKOFF_S
        self._one_by_one = 0  # rows of a refused batch, written singly to find the bad one
        self._idle: list[defer.Deferred] = []
        self.failures = 0  # writes retried

    def add(self, change: StateChange) -> None:
        """Queue one row (reactor thread); written soon, in order."""
        self._pending.append(change)
        self._next()

    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> defer.Deferred:
        """Fires once everything queued so far is written (or dropped as refused)."""
        if not self._pending and not self._writing:
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        self._idle.append(d)
        return d

    def stopService(self):
        super().stopService()
        d = self.flush()
        d.addTimeout(self._stop_timeout, self._reactor)
        d.addErrback(lambda f: logger.error("state history stopped with %d change(s) not stored", len(self._pending)))
        return d

    # --- the writes ------------------------------------------------------------------------------

    def _next(self) -> None:
        if self._writing:
            return
        if not self._pending:
            idle, self._idle = self._idle, []
            for d in idle:
                d.callback(None)
            return
        self._writing = True
        rows = self._pending[:1 if self._one_by_one else self._batch]
        d = self._run_blocking(self._append, rows)
        d.addCallbacks(self._written, self._failed, callbackArgs=(len(rows),), errbackArgs=(len(rows),))

    def _written(self, _: Any, count: int) -> None:
        del self._pending[:count]
        self._one_by_one = max(0, self._one_by_one - count)
        self._writing, self._backoff = False, FIRST_BACKOFF_S
        self._next()

    def _failed(self, failure: Any, count: int) -> None:
        if not is_transient(failure.value):
            if count > 1:  # which row? one at a time
                self._one_by_one = count
            else:
                del self._pending[0]
                self._one_by_one = max(0, self._one_by_one - 1)
                logger.error("a state history change refused, dropped: %s", failure.getErrorMessage())
            self._writing = False
            self._next()
            return
        self.failures += 1
        logger.warning("state history write failed (%s); retrying in %.1fs", failure.type.__name__, self._backoff)
        self._reactor.callLater(self._backoff, self._retry)
        self._backoff = min(self._backoff * 2, self._max_backoff)

    def _retry(self) -> None:
        self._writing = False
        self._next()
