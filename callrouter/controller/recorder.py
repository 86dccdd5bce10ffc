"""Call-record writes off the reactor thread, in order, retried through a database outage.

The controller must never block on the database, and a database that is briefly down must not
lose a call record. Every write is queued, in call order, to one background thread that applies it
with the blocking CallStore; a failing write is retried with backoff until it goes through, and
the writes behind it wait (their order matters: a call is opened before it is closed).
Leg ids returned by the store are kept by this thread, keyed by the controller's leg names.

What is queued when the thread comes for more (up to BATCH writes) is stored in one transaction
when the store offers `batch()` (callrouter.store.calls): one commit for many writes, where a
commit each cost the controller most of its CPU per call at 100 calls/s. If the batch fails, it
is rolled back and its writes applied again one at a time, each retried or dropped as alone
(every write is idempotent, so replaying one whose commit went through changes nothing).

Memory is bounded: past `bound` writes queued, the next ones go to an append-only file (`spill`,
callrouter.controller.spill) and are read back in order once the queue before them is written; the
writes still queued when the recorder stops are saved there too, and written first at the next
start. Without a spill file (a test's recorder) the queue is unbounded, as before.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from typing import Any, Callable

from callrouter.controller.spill import Spill
from callrouter.ports import CallStore

logger = logging.getLogger(__name__)

BATCH = 200  # writes in one transaction at most
# After a first write, what comes within this time is stored with it: at 100 calls/s (a few
# writes each) a batch of a dozen or more instead of a commit per write. A flush is not delayed.
BATCH_WAIT_S = 0.05
# Not written in a batch: markers, and jobs (`submit`) whose own transactions may handle their errors.
_ALONE = ("_mark", "_call", "_legs_known")
# Writes kept in memory before the next ones go to the spill file: about 1,500 answered calls
# (13 writes each, a few hundred bytes a write), a few megabytes.
BOUND = 20_000
_SPILLED = ("_spilled", (), {})  # in the queue where the writes in the spill file come in the order


class CallRecorder:
    """Fire-and-forget call-record writes; `flush()` waits until everything queued is stored."""

    def __init__(self, store: CallStore, max_backoff_s: float = 10.0, sleep: Callable[[float], None] = time.sleep,
                 spill: Spill | None = None, bound: int = BOUND):
        self._store = store
        self._queue: "queue.Queue[tuple[str, tuple, dict] | None]" = queue.Queue()
        self._spill, self._bound = spill, bound
        self._lock = threading.Lock()  # the choice between the queue and the file, and the file
        self._spilling = False  # new writes go to the file, behind those it holds
        self._inflight: list[tuple[str, tuple, dict]] = []  # taken by the thread, not yet stored
        self._legs: dict[str, int] = {}
        self._max_backoff = max_backoff_s
        self._sleep = sleep
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.failures = 0  # writes that had to be retried, for metrics
        self.pending_gauge: Callable[[int], None] = lambda n: None

    def start(self) -> None:
        if self._spill is not None and self._spill.unread and not self._spilling:
            logger.warning("call recorder: %d write(s) left by the last run in %s are stored first",
                           self._spill.unread, self._spill.path)
            self._spilling = True
            self._queue.put(_SPILLED)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="call-recorder", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued (bounded by `timeout`), then stop the thread."""
        if self._thread is None:
            return
        self._stopping = True
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._save()
        self._thread = None

    def _save(self) -> None:
        """The writes not stored (the database is down), kept for the next start if there is a file."""
        with self._lock:
            queued = []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None and item is not _SPILLED:
                    queued.append(item)
            if self._spill is None:
                logger.error("call recorder stopped with %d writes not stored", len(queued) + len(self._inflight))
                return
            front = [*self._inflight, *queued]
            try:
                self._spill.save(front, self._legs)
            except OSError as exc:
                logger.error("call recorder stopped with %d writes not stored, not saved either (%s: %s)",
                             len(front) + self._spill.unread, self._spill.path, exc)
                return
            self._spilling = True
            logger.error("call recorder stopped with writes not stored: %d saved in %s, stored at the next start",
                         self._spill.unread, self._spill.path)

    def flush(self, timeout: float = 30.0) -> bool:
        done = threading.Event()
        self._put(("_mark", (done,), {}))
        return done.wait(timeout)

    def pending(self) -> int:
        """Writes not stored yet: queued in memory (those being written included), and in the spill file."""
        return self._queue.qsize() + len(self._inflight) + (self._spill.unread if self._spill is not None else 0)

    def spilled(self) -> int:
        return self._spill.unread if self._spill is not None else 0

    def _put(self, item: tuple[str, tuple, dict]) -> None:
        if self._spill is None:
            self._queue.put(item)
            return
        with self._lock:
            if not self._spilling and self._queue.qsize() < self._bound:
                self._queue.put(item)
                return
            if not self._spilling:
                self._spilling = True
                self._queue.put(_SPILLED)
                logger.warning("call recorder: %d writes wait for the database; the next ones go to %s",
                               self._bound, self._spill.path)
            self._spill.append(item)

    # --- the writes --------------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_") or not hasattr(self._store, name):
            raise AttributeError(name)

        def enqueue(*args: Any, **kwargs: Any) -> None:
            self._put((name, args, kwargs))
            self.pending_gauge(self.pending())

        return enqueue

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Any other blocking store write (e.g. a callback task's), in the same order and with the
        same retries as the call records."""
        self._put(("_call", (fn, args, kwargs), {}))
        self.pending_gauge(self.pending())

    def leg_started(self, call_id: str, key: str, kind: str, party: str | None, now: dt.datetime) -> None:
        self._put(("_leg_started", (call_id, key, kind, party, now), {}))

    def leg_ended(self, key: str, cause: str, now: dt.datetime) -> None:
        self._put(("_leg_ended", (key, cause, now), {}))

    # --- the thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            items, stop = self._take()
            self._store_all(items)
            self.pending_gauge(self.pending())
            if stop:
                if self._queue.empty():
                    return
                self._queue.put(None)  # more arrived behind the stop marker: write them first

    def _store_all(self, items: list[tuple[str, tuple, dict]]) -> None:
        self._inflight = items
        run: list[tuple[str, tuple, dict]] = []
        for item in items:
            if item is _SPILLED:
                self._write_batch(run)
                run = []
                self._replay()
            elif item[0] in _ALONE:
                self._write_batch(run)
                run = []
                self._apply(*item)
            else:
                run.append(item)
        self._write_batch(run)
        self._inflight = []

    def _replay(self) -> None:
        """The writes in the spill file, in order, until it is read to its end (those appended
        meanwhile included); then new writes go to the queue again, behind the last ones read
        (being written, they would be saved at a stop: `_inflight`)."""
        assert self._spill is not None
        while True:
            with self._lock:
                if self._spill.saved:  # stopped: what it holds is for the next start
                    return
                items = self._spill.read(BATCH)
                done = self._spill.unread == 0
                if done:
                    self._spill.clear()
                    self._spilling = False
                self._inflight = items
            self._store_all(items)
            self.pending_gauge(self.pending())
            if done:
                logger.info("call recorder: the writes kept in %s are stored", self._spill.path)
                return

    def _take(self) -> tuple[list[tuple[str, tuple, dict]], bool]:
        """The next writes queued (waiting for one, then for what comes within BATCH_WAIT_S, up to
        BATCH; no longer once a flush or a stop is asked), and whether the stop marker came after them."""
        items: list[tuple[str, tuple, dict]] = []
        item = self._queue.get()
        deadline = time.monotonic() + BATCH_WAIT_S
        while item is not None:
            items.append(item)
            if len(items) >= BATCH or item[0] in ("_mark", "_spilled") or self._stopping:
                return items, False
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return items, False
        return items, True

    def _write_batch(self, items: list[tuple[str, tuple, dict]]) -> None:
        batch = getattr(self._store, "batch", None) if len(items) > 1 else None
        if batch is None:
            for item in items:
                self._apply(*item)
            return
        legs = dict(self._legs)
        try:
            with batch():
                for name, args, kwargs in items:
                    self._write(name, args, kwargs)
        except Exception as exc:
            self._legs = legs  # the leg ids of a rolled-back transaction are void
            if is_transient(exc):
                self.failures += 1
            for item in items:  # one at a time: each retried, or dropped if refused, as alone
                self._apply(*item)

    def _apply(self, name: str, args: tuple, kwargs: dict) -> None:
        if name == "_mark":
            args[0].set()
            return
        backoff = 0.2
        while True:
            try:
                self._write(name, args, kwargs)
                return
            except Exception as exc:
                if not is_transient(exc):  # a write refused on its merits never succeeds: log, drop
                    logger.error("call record write %s refused: %s", _name(name, args), exc)
                    return
                self.failures += 1  # database down, lock timeout...: retry, keep the order
                if self._stopping and backoff >= self._max_backoff and self._spill is None:
                    logger.error("giving up call record write %s while stopping", name)
                    return
                logger.warning("call record write %s failed (%s); retrying in %.1fs", _name(name, args),
                               type(exc).__name__, backoff)
                self._sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    def _write(self, name: str, args: tuple, kwargs: dict) -> None:
        if name == "_call":
            fn, fargs, fkwargs = args
            fn(*fargs, **fkwargs)
        elif name == "_leg_started":
            call_id, key, kind, party, now = args
            self._legs[key] = self._store.add_leg(call_id, kind, party, now)
        elif name == "_leg_ended":
            key, cause, now = args
            leg_id = self._legs.get(key)
            if leg_id is not None:  # forgotten once stored: a failed try is tried again with it
                self._store.end_leg(leg_id, cause, now)
                self._legs.pop(key, None)
        elif name == "_legs_known":  # saved with the writes a stopped recorder left
            self._legs.update(args[0])
        else:
            getattr(self._store, name)(*args, **kwargs)


def _name(name: str, args: tuple) -> str:
    return getattr(args[0], "__name__", "job") if name == "_call" else name


# Errors that say "the database is not reachable right now", by class name so that this module
# needs no database driver: SQLAlchemy's OperationalError/InterfaceError/DisconnectionError wrap
# the drivers' connection failures, lock timeouts and server restarts.
TRANSIENT_ERRORS = {"OperationalError", "InterfaceError", "DisconnectionError", "TimeoutError",
                    "ConnectionError", "ConnectionRefusedError"}


def is_transient(exc: BaseException) -> bool:
    return any(cls.__name__ in TRANSIENT_ERRORS for cls in type(exc).__mro__)
