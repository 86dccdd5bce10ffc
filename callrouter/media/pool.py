"""The media worker pool: a Twisted service in the controller supervising worker processes.

It starts the workers (one process per SIP port, consecutive from `sip_port_base`), learns each
worker's call cap from its `ready` event, tracks which legs live on which worker, routes commands
to the worker holding the leg, and restarts a worker that dies (with a growing delay). Every leg
that was on a dead worker is reported to the observer as lost with cause "worker_lost": the
controller closes those calls; the other workers' calls go on.

Its size follows the load (callrouter.media.sizing, resized by pool_resize.py): workers are added
ahead of the traffic and retired when idle, and the edge's dispatcher is kept in step (`edge`): a
worker is activated there once ready, and a retiring one is taken out before it stops taking calls.

Slots: a caller takes one slot. Her secretary's leg is dialled on the caller's worker when it has
room (`dial(worker_of(caller_leg), ...)`), else on the roomiest worker; a `bridge` of two legs of
two workers becomes a relay between them (relays.py). `pick(legs)` finds room for legs the
controller places itself, never taking the room callers still waiting for a second leg need.
A slot is taken while a leg holds it and after, until the worker says its pjsua freed it
(`slots_held`: a BYE not yet answered keeps the SIP dialog, and the slot, alive).

With a media service (`link`, service.py), the workers outlive the controller: a new pool takes
over the running ones (`take_over`) and asks each for its live legs (`leg_report`, handed on to
the observer, which rebuilds its calls from them).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Protocol, Sequence

from twisted.application import service
from twisted.application.internet import backoffPolicy
from twisted.internet import defer, error
from twisted.python.failure import Failure

from callrouter.media import protocol as p
from callrouter.media.pool_resize import EdgeDispatch, NoEdge, Resizer
from callrouter.media.relays import RelayBook
from callrouter.media.settings import MediaSettings
from callrouter.media.slot_events import SlotsHeld
from callrouter.media.slots import WorkerSlot, WorkerStatus, pick, reported, take_over  # noqa: F401 - WorkerStatus
from callrouter.media.worker_process import WorkerProcess

logger = logging.getLogger(__name__)

WORKER_LOST = "worker_lost"
WORKER_STOPPED = "worker_stopped"
RUNNING = ("ready", "retiring")  # states whose worker holds legs and takes commands
_RELAY_EVENTS = (p.RelayReady, p.RelayEnded)


class MediaObserver(Protocol):
    """What the controller implements to hear from the media plane."""

    def media_event(self, worker: str, event: p.Event) -> None:
        """Every event a worker reports, `ready` included."""

    def leg_lost(self, worker: str, leg: str, cause: str) -> None:
        """A leg ended without a `leg_ended` event because its worker died or was stopped."""


class NoSuchLeg(LookupError):
    """A command for a leg no live worker holds."""


class MediaPool(service.Service):
    name = "media-pool"

    def __init__(self, settings: MediaSettings, observer: MediaObserver, reactor: Any = None,
                 python: str = sys.executable, edge: EdgeDispatch | None = None, callers_per_worker: int = 0,
                 link: Any = None, keep_workers: bool = False) -> None:
        """`edge`: the dispatcher kept in step (None: no edge); `callers_per_worker`: the edge's
        limit of callers it sends one worker (sip.worker_max_calls; 0: none but the cap);
        `link`: the media service holding the workers (link.WorkerLink; None: they are this
        process's children); `keep_workers`: stopping the pool leaves them running (to the next
        controller) rather than stopping them."""
        problems = settings.problems()
        if problems:
            raise ValueError("media settings: " + "; ".join(problems))
        if reactor is None:
            from twisted.internet import reactor  # the global reactor, only when none is injected
        self.settings = settings
        self._observer = observer
        self._reactor = reactor
        self._python = python
        self._link, self._keep_workers = link, keep_workers
        self.taken_over: list[str] = []  # the workers found running at start, each asked for its legs
        self._launcher = link if link is not None else reactor
        self._slots: list[WorkerSlot] = []
        self._owner: dict[str, WorkerSlot] = {}
        self._callers: set[str] = set()    # incoming legs alive
        self._waiting: set[str] = set()    # ... not bridged yet: each may need a second slot
        self._ready_waiters: list[defer.Deferred] = []
        self.cap: int | None = None
        self.relays = RelayBook(self._write)
        self.resizer = Resizer(self, edge or NoEdge(), reactor, callers_per_worker)
        # Restart delays: restart_delay_seconds after a first quick death, times the factor after
        # each further one, at most restart_delay_max_seconds; no jitter (one process per slot).
        self._restart_delay = backoffPolicy(settings.restart_delay_seconds, settings.restart_delay_max_seconds,
                                            settings.restart_backoff_factor, jitter=lambda: 0.0)

    # -- service -----------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        if self._link is None:
            self.resizer.start()
            return
        d = self._link.connect()
        d.addCallback(self._found)
        d.addErrback(lambda f: logger.error("media pool not started: %s", f.getErrorMessage()))

    def _found(self, workers: list) -> None:
        if self.running:
            take_over(self, self._link, workers, self.taken_over)
            self.resizer.start()

    def stopService(self) -> defer.Deferred:
        super().stopService()
        self.resizer.stop()
        if self._keep_workers:  # the workers and their calls go on, for the next controller
            for slot in self._slots:
                self._cancel_timer(slot)
            self._link.close()
            return defer.succeed(None)
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
        d = defer.DeferredList(waits)
        if self._link is not None:  # every worker ended: the channel closes with them, not lost
            d.addBoth(lambda result: self._link.close() or result)
        return d

    # -- what the controller uses ------------------------------------------------------------

    def when_ready(self) -> defer.Deferred:
        """Fires once the pool has its first size and every worker started reported ready."""
        d: defer.Deferred = defer.Deferred()
        self._ready_waiters.append(d)
        self._check_ready()
        return d

    def status(self) -> list[WorkerStatus]:
        return [WorkerStatus(s.name, s.sip_port, s.state, s.cap, len(s.legs), s.pid, s.restarts, s.held)
                for s in self._slots]

    def slots(self) -> Sequence[WorkerSlot]:
        return tuple(self._slots)

    def waiting(self) -> int:
        """Callers without a second leg yet."""
        return len(self._waiting)

    def callers_on(self, slot: WorkerSlot) -> int:
        return len(slot.legs & self._callers)

    def sip_ports(self) -> list[int]:
        """The SIP ports of every worker position started so far."""
        return [s.sip_port for s in self._slots]

    def pick(self, legs: int = 1) -> str | None:
        """The ready worker with room for `legs` more legs, least loaded first; None when it has
        none, or when, at workers_max, that room is what callers waiting for a second leg need."""
        grown = sum(1 for s in self._slots if s.state != "down") >= self.settings.workers_max
        slot = pick(self._slots, legs, len(self._waiting) if grown else 0)
        return slot.name if slot is not None else None

    def worker_of(self, leg: str) -> str | None:
        slot = self._owner.get(leg)
        return slot.name if slot is not None else None

    def send(self, command: p.Command) -> None:
        """Send a command to the worker holding its leg (raises NoSuchLeg when none does); a
        bridge of two legs of two workers becomes a relay (relays.py)."""
        slot = self._owner.get(command.leg)
        if slot is None or slot.state not in RUNNING:
            raise NoSuchLeg(command.leg)
        if isinstance(command, (p.Bridge, p.Unbridge, p.RecordCall)):
            other = self._owner.get(command.other)
            if other is None or other.state not in RUNNING:
                raise NoSuchLeg(command.other)
            if isinstance(command, p.Bridge):
                self._waiting.difference_update((command.leg, command.other))
            elif isinstance(command, p.Unbridge):
                self._waiting.update(leg for leg in (command.leg, command.other) if leg in self._callers)
            if other is not slot and self.relays.route(slot, other, command):
                return
        self._write(slot, command)

    def dial(self, worker: str, command: p.Dial) -> None:
        """Place a new leg on a given worker (the one holding the leg it will be bridged with), or
        on the roomiest one when that one is full."""
        slot = self._slot_named(worker)
        if slot is None or slot.state not in RUNNING:
            raise NoSuchLeg(f"no ready worker {worker!r}")
        if command.leg in self._owner:
            raise ValueError(f"leg {command.leg!r} already exists")
        if slot.used >= slot.cap:
            roomy = [s for s in self._slots if s.state == "ready" and s.used < s.cap]
            if roomy:
                target = min(roomy, key=lambda s: (s.used, s.index))
                logger.info("worker %s is full: leg %s placed on %s", slot.name, command.leg, target.name)
                slot = target
        self._adopt(slot, command.leg)
        self._write(slot, command)
        self.resizer.changed()

    # -- worker lifecycle (the resizer decides when) ------------------------------------------

    def _start_one(self) -> WorkerSlot | None:
        """Start a worker in the first free position; None at workers_max."""
        slot = next((s for s in self._slots if s.state == "down" and s.timer is None), None)
        if slot is None:
            if len(self._slots) >= self.settings.workers_max:
                return None
            index = len(self._slots)
            slot = WorkerSlot(index=index, name=f"w{index}", sip_port=self.settings.sip_port(index),
                              rtp_port=self.settings.rtp_port(index))
            self._slots.append(slot)
        slot.failures = 0
        self._spawn(slot)
        return slot

    def _spawn(self, slot: WorkerSlot) -> None:
        if not self.running:
            return
        s = self.settings
        argv = [self._python, "-m", "callrouter.media.worker", "--name", slot.name,
                "--sip-port", str(slot.sip_port), "--rtp-port", str(slot.rtp_port),
                "--rtp-port-range", str(s.rtp_ports_per_worker), "--bind", s.bind,
                "--pj-log-level", str(s.pj_log_level)]
        slot.state, slot.cap, slot.pid, slot.ready_at, slot.timer = "starting", 0, None, None, None
        slot.retire_phase, slot.idle_since, slot.held = "", None, 0
        slot.transport = self._launcher.spawnProcess(WorkerProcess(self, slot), self._python, argv,
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
        retired = slot.state == "retiring" and slot.retire_phase == "sent"
        was_stable = slot.ready_at is not None and \
            self._reactor.seconds() - slot.ready_at >= self.settings.stable_after_seconds
        slot.transport, slot.state, slot.pid, slot.retire_phase, slot.held = None, "down", None, "", 0
        lost = sorted(slot.legs)
        for leg in lost:
            self._forget(leg)
        slot.legs.clear()
        self.relays.worker_gone(slot)
        cause = WORKER_STOPPED if stopping or retired else WORKER_LOST
        if not stopping and not retired:
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
        if retired:
            logger.info("media worker %s retired", slot.name)
            self.resizer.changed()
            return
        slot.failures = 0 if was_stable else slot.failures + 1
        delay = self._restart_delay(max(0, slot.failures - 1))
        logger.info("restarting media worker %s in %.1fs", slot.name, delay)
        slot.timer = self._reactor.callLater(delay, self._restart, slot)

    def _restart(self, slot: WorkerSlot) -> None:
        slot.timer = None
        slot.restarts += 1
        self._spawn(slot)

    def _cancel_timer(self, slot: WorkerSlot) -> None:
        if slot.timer is not None and slot.timer.active():
            slot.timer.cancel()
        slot.timer = None

    # -- events ------------------------------------------------------------------------------

    def _on_event(self, slot: WorkerSlot, transport: Any, event: p.Event) -> None:
        if transport is not slot.transport:
            return
        if isinstance(event, _RELAY_EVENTS):
            if isinstance(event, p.RelayReady):
                self.relays.ready(slot, event.relay, event.port)
            else:
                self.relays.ended(slot, event.relay)
            return
        if isinstance(event, p.Error) and event.command.startswith("relay_"):
            logger.warning("media worker %s: %s %s: %s", slot.name, event.command, event.leg, event.message)
            self.relays.ended(slot, event.leg)
            return
        if isinstance(event, p.Ready):
            self._ready(slot, event)
        elif isinstance(event, p.IncomingCall):
            self._adopt(slot, event.leg)
            self._callers.add(event.leg)
            self._waiting.add(event.leg)
            self.resizer.arrival()
        elif isinstance(event, p.LegReport):
            reported(self, slot, event)
        elif isinstance(event, SlotsHeld):
            slot.held = max(0, min(event.held, slot.cap))
        elif isinstance(event, p.LegEnded):
            slot.legs.discard(event.leg)
            if self._owner.get(event.leg) is slot:
                self._forget(event.leg)
            if not slot.legs:
                slot.idle_since = self._reactor.seconds()
        elif isinstance(event, p.Error):
            logger.warning("media worker %s: %s %s: %s", slot.name, event.command or "-", event.leg or "-",
                           event.message)
        try:
            self._observer.media_event(slot.name, event)
        except Exception:
            logger.exception("observer failed on %s", event.type)
        if isinstance(event, p.Ready):
            self._check_ready()

    def _ready(self, slot: WorkerSlot, event: p.Ready) -> None:
        self._cancel_timer(slot)
        now = self._reactor.seconds()
        slot.state, slot.cap, slot.ready_at, slot.idle_since = "ready", event.cap, now, now
        slot.pid = event.pid
        logger.info("media worker %s ready: SIP port %s, %s legs", slot.name, event.sip_port, event.cap)
        if self.cap is None:
            self.cap = event.cap
            shortfall = self.settings.shortfall(event.cap)
            if shortfall is not None:
                logger.error("%s", shortfall)
        self.resizer.worker_ready(slot)

    def _adopt(self, slot: WorkerSlot, leg: str) -> None:
        slot.legs.add(leg)
        slot.idle_since = None
        self._owner[leg] = slot

    def _forget(self, leg: str) -> None:
        self._owner.pop(leg, None)
        self._callers.discard(leg)
        self._waiting.discard(leg)

    def _check_ready(self) -> None:
        if self.cap is None or not self.resizer.started_size_reached():
            return
        if any(s.state == "starting" for s in self._slots):
            return
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            waiter.callback(self.status())

    def _write(self, slot: WorkerSlot, command: p.Command) -> None:
        slot.transport.write(p.encode(command))

    def _slot_named(self, name: str) -> WorkerSlot | None:
        return next((s for s in self._slots if s.name == name), None)
