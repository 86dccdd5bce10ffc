"""The media worker pool: a Twisted service in the controller supervising worker processes.

It starts the workers (one process per SIP port, consecutive from `sip_port_base`), learns each
worker's call cap from its `ready` event and sizes the pool from the legs wanted, tracks which legs
live on which worker, routes commands to the worker holding the leg, and restarts a worker that
dies (with a growing delay). Every leg that was on a dead worker is reported to the observer as
lost with cause "worker_lost": the controller closes those calls; the other workers' calls go on.

A caller and the secretary it is bridged to must be legs of the same worker, so a worker should
be sent at most `cap // 2` callers (Kamailio's dispatcher load limit) and the controller dials
the secretary with `dial(worker_of(caller_leg), ...)`; `pick(legs=2)` finds room for a new pair.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from twisted.application import service
from twisted.application.internet import backoffPolicy
from twisted.internet import defer, error, protocol
from twisted.python.failure import Failure

from callrouter.domain.masking import mask_numbers_in
from callrouter.media import protocol as p
from callrouter.media.settings import MediaSettings

logger = logging.getLogger(__name__)

_PJSUA_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} ")
WORKER_LOST = "worker_lost"
WORKER_STOPPED = "worker_stopped"


class MediaObserver(Protocol):
    """What the controller implements to hear from the media plane."""

    def media_event(self, worker: str, event: p.Event) -> None:
        """Every event a worker reports, `ready` included."""

    def leg_lost(self, worker: str, leg: str, cause: str) -> None:
        """A leg ended without a `leg_ended` event because its worker died or was stopped."""


class NoSuchLeg(LookupError):
    """A command for a leg no live worker holds."""


@dataclass
class WorkerSlot:
    """One worker position: a fixed name and ports; the process in it comes and goes."""

    index: int
    name: str
    sip_port: int
    rtp_port: int
    state: str = "down"              # down -> starting -> ready -> (down | stopping)
    cap: int = 0
    pid: int | None = None
    legs: set[str] = field(default_factory=set)
    failures: int = 0
    ready_at: float | None = None
    transport: Any = None
    timer: Any = None                # pending restart or ready timeout
    ended: defer.Deferred | None = None


@dataclass(frozen=True)
class WorkerStatus:
    name: str
    sip_port: int
    state: str
    cap: int
    legs: int
    pid: int | None


class _WorkerProcess(protocol.ProcessProtocol):
    def __init__(self, pool: "MediaPool", slot: WorkerSlot) -> None:
        self._pool, self._slot = pool, slot
        self._out = p.LineReader()
        self._err = bytearray()

    def outReceived(self, data: bytes) -> None:
        for line in self._out.feed(data):
            if isinstance(line, p.ProtocolError):
                logger.warning("worker %s: %s", self._slot.name, line)
                continue
            try:
                event = p.decode_event(line)
            except p.ProtocolError as exc:
                logger.warning("worker %s sent a bad event: %s", self._slot.name, exc)
                continue
            self._pool._on_event(self._slot, self.transport, event)

    def errReceived(self, data: bytes) -> None:
        # The worker's log lines, passed on line by line. Its own mask numbers already; pjsua's do
        # not (at pj_log_level 4 and up it dumps whole SIP messages): every line is masked here.
        self._err += data
        while b"\n" in self._err:
            line, _, rest = bytes(self._err).partition(b"\n")
            self._err = bytearray(rest[-65536:])
            text = mask_numbers_in(line.decode("utf-8", "replace").rstrip())
            if text.strip():
                # pjsua's own lines (its start-up banner) start with a bare time: keep them at debug.
                level = logging.DEBUG if _PJSUA_LINE.match(text) else logging.INFO
                logger.log(level, "worker %s: %s", self._slot.name, text)

    def processEnded(self, reason: Failure) -> None:
        self._pool._on_exit(self._slot, self.transport, reason)


class MediaPool(service.Service):
    name = "media-pool"

    def __init__(self, settings: MediaSettings, observer: MediaObserver, reactor: Any = None,
                 python: str = sys.executable) -> None:
        problems = settings.problems()
        if problems:
            raise ValueError("media settings: " + "; ".join(problems))
        if reactor is None:
            from twisted.internet import reactor  # the global reactor, only when none is injected
        self.settings = settings
        self._observer = observer
        self._reactor = reactor
        self._python = python
        self._slots: list[WorkerSlot] = []
        self._owner: dict[str, WorkerSlot] = {}
        self._ready_waiters: list[defer.Deferred] = []
        self.cap: int | None = None
        # Restart delays: restart_delay_seconds after a first quick death, times the factor after
        # each further one, at most restart_delay_max_seconds; no jitter (one process per slot).
        self._restart_delay = backoffPolicy(settings.restart_delay_seconds, settings.restart_delay_max_seconds,
                                            settings.restart_backoff_factor, jitter=lambda: 0.0)

    # -- service -----------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._grow(self.settings.workers_min)

    def stopService(self) -> defer.Deferred:
        super().stopService()
        waits = []
        for slot in self._slots:
            self._cancel_timer(slot)
            if slot.transport is not None:
                slot.state = "stopping"
                slot.ended = defer.Deferred()
                waits.append(slot.ended)
                try:
                    slot.transport.closeStdin()  # end of commands: the worker hangs up and exits
                except Exception:  # pragma: no cover - already gone
                    pass
                slot.timer = self._reactor.callLater(self.settings.stop_timeout_seconds, self._kill, slot)
            else:
                slot.state = "down"
        for waiter in self._ready_waiters:
            waiter.cancel()
        self._ready_waiters = []
        return defer.DeferredList(waits)

    # -- what the controller uses ------------------------------------------------------------

    def when_ready(self) -> defer.Deferred:
        """Fires once the pool has its full size and every worker reported ready."""
        d: defer.Deferred = defer.Deferred()
        self._ready_waiters.append(d)
        self._check_ready()
        return d

    def status(self) -> list[WorkerStatus]:
        return [WorkerStatus(s.name, s.sip_port, s.state, s.cap, len(s.legs), s.pid) for s in self._slots]

    def sip_ports(self) -> list[int]:
        """The SIP ports of every worker position (for Kamailio's dispatcher list)."""
        return [s.sip_port for s in self._slots]

    def pick(self, legs: int = 1) -> str | None:
        """The ready worker with room for `legs` more legs, least loaded first; None when full."""
        candidates = [s for s in self._slots if s.state == "ready" and len(s.legs) + legs <= s.cap]
        if not candidates:
            return None
        return min(candidates, key=lambda s: (len(s.legs), s.index)).name

    def worker_of(self, leg: str) -> str | None:
        slot = self._owner.get(leg)
        return slot.name if slot is not None else None

    def send(self, command: p.Command) -> None:
        """Send a command to the worker holding its leg (raises NoSuchLeg when none does)."""
        slot = self._owner.get(command.leg)
        if slot is None or slot.state != "ready":
            raise NoSuchLeg(command.leg)
        self._write(slot, command)

    def dial(self, worker: str, command: p.Dial) -> None:
        """Place a new leg on a given worker (the one holding the leg it will be bridged with)."""
        slot = self._slot_named(worker)
        if slot is None or slot.state != "ready":
            raise NoSuchLeg(f"no ready worker {worker!r}")
        if command.leg in self._owner:
            raise ValueError(f"leg {command.leg!r} already exists")
        self._adopt(slot, command.leg)
        self._write(slot, command)

    # -- worker lifecycle --------------------------------------------------------------------

    def _grow(self, size: int) -> None:
        size = min(size, self.settings.workers_max)
        while len(self._slots) < size:
            index = len(self._slots)
            slot = WorkerSlot(index=index, name=f"w{index}", sip_port=self.settings.sip_port(index),
                              rtp_port=self.settings.rtp_port(index))
            self._slots.append(slot)
            self._spawn(slot)

    def _spawn(self, slot: WorkerSlot) -> None:
        if not self.running:
            return
        s = self.settings
        argv = [self._python, "-m", "callrouter.media.worker", "--name", slot.name,
                "--sip-port", str(slot.sip_port), "--rtp-port", str(slot.rtp_port),
                "--rtp-port-range", str(s.rtp_ports_per_worker), "--bind", s.bind,
                "--pj-log-level", str(s.pj_log_level)]
        slot.state, slot.cap, slot.pid, slot.ready_at, slot.timer = "starting", 0, None, None, None
        slot.transport = self._reactor.spawnProcess(_WorkerProcess(self, slot), self._python, argv,
                                                    env=dict(os.environ))
        slot.pid = slot.transport.pid
        slot.timer = self._reactor.callLater(s.ready_timeout_seconds, self._ready_timeout, slot)
        logger.info("media worker %s starting (pid %s, SIP port %s)", slot.name, slot.pid, slot.sip_port)

    def _ready_timeout(self, slot: WorkerSlot) -> None:
        slot.timer = None
        if slot.state == "starting":
            logger.error("media worker %s not ready after %ss: killing it", slot.name,
                         self.settings.ready_timeout_seconds)
            self._kill(slot)

    def _kill(self, slot: WorkerSlot) -> None:
        slot.timer = None
        if slot.transport is not None:
            try:
                slot.transport.signalProcess("KILL")
            except error.ProcessExitedAlready:
                pass

    def _on_exit(self, slot: WorkerSlot, transport: Any, reason: Failure) -> None:
        if transport is not slot.transport:
            return  # an older process of this slot
        self._cancel_timer(slot)
        stopping = slot.state == "stopping"
        was_stable = slot.ready_at is not None and \
            self._reactor.seconds() - slot.ready_at >= self.settings.stable_after_seconds
        slot.transport, slot.state, slot.pid = None, "down", None
        lost = sorted(slot.legs)
        for leg in lost:
            self._owner.pop(leg, None)
        slot.legs.clear()
        cause = WORKER_STOPPED if stopping else WORKER_LOST
        if not stopping:
            logger.error("media worker %s died (%s) with %s leg(s)", slot.name,
                         reason.getErrorMessage(), len(lost))
        for leg in lost:
            try:
                self._observer.leg_lost(slot.name, leg, cause)
            except Exception:
                logger.exception("observer failed on lost leg")
        if stopping:
            ended, slot.ended = slot.ended, None
            if ended is not None:
                ended.callback(None)
            return
        slot.failures = 0 if was_stable else slot.failures + 1
        delay = self._restart_delay(max(0, slot.failures - 1))
        logger.info("restarting media worker %s in %.1fs", slot.name, delay)
        slot.timer = self._reactor.callLater(delay, self._restart, slot)

    def _restart(self, slot: WorkerSlot) -> None:
        slot.timer = None
        self._spawn(slot)

    def _cancel_timer(self, slot: WorkerSlot) -> None:
        if slot.timer is not None and slot.timer.active():
            slot.timer.cancel()
        slot.timer = None

    # -- events ------------------------------------------------------------------------------

    def _on_event(self, slot: WorkerSlot, transport: Any, event: p.Event) -> None:
        if transport is not slot.transport:
            return
        if isinstance(event, p.Ready):
            self._cancel_timer(slot)
            slot.state, slot.cap, slot.ready_at = "ready", event.cap, self._reactor.seconds()
            logger.info("media worker %s ready: SIP port %s, %s legs", slot.name, event.sip_port, event.cap)
            if self.cap is None:
                self.cap = event.cap
                shortfall = self.settings.shortfall(event.cap)
                if shortfall is not None:
                    logger.error("%s", shortfall)
                self._grow(self.settings.workers_needed(event.cap))
        elif isinstance(event, p.IncomingCall):
            self._adopt(slot, event.leg)
        elif isinstance(event, p.LegEnded):
            slot.legs.discard(event.leg)
            if self._owner.get(event.leg) is slot:
                del self._owner[event.leg]
        elif isinstance(event, p.Error):
            logger.warning("media worker %s: %s %s: %s", slot.name, event.command or "-", event.leg or "-",
                           event.message)
        try:
            self._observer.media_event(slot.name, event)
        except Exception:
            logger.exception("observer failed on %s", event.type)
        if isinstance(event, p.Ready):
            self._check_ready()

    def _adopt(self, slot: WorkerSlot, leg: str) -> None:
        slot.legs.add(leg)
        self._owner[leg] = slot

    def _check_ready(self) -> None:
        if self.cap is None or not all(s.state == "ready" for s in self._slots):
            return
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            waiter.callback(self.status())

    def _write(self, slot: WorkerSlot, command: p.Command) -> None:
        slot.transport.write(p.encode(command))

    def _slot_named(self, name: str) -> WorkerSlot | None:
        return next((s for s in self._slots if s.name == name), None)


__all__: Sequence[str] = ("MediaPool", "MediaObserver", "NoSuchLeg", "WorkerStatus", "WORKER_LOST",
                          "WORKER_STOPPED")
