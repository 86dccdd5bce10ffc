"""The worker's main loop, and the event pipe to the controller (stdout).

One thread does the work: it sleeps in pjsua's `libHandleEvents` until a SIP or RTP packet, a
command, a callback posted from the conference clock's thread, a signal (all through wake.py) or
the next deadline of its legs; then it handles the queued callbacks, the commands, the deadlines,
and says whether the conference clock must run (clock.py). With no leg and nothing timed it sleeps
until woken: an idle worker has no timer at all.
"""

from __future__ import annotations

import collections
import gc
import logging
import os
import threading
import time
from typing import BinaryIO

import pjsua2 as pj
from pjsua2 import _pjsua2

from callrouter.media import protocol as p
from callrouter.media.worker.callbacks import CallEvents
from callrouter.media.worker.clock import MediaClock
from callrouter.media.worker.commands import Commands
from callrouter.media.worker.legs import Legs, Refused
from callrouter.media.worker.pjsua import calls_in_use, create_account, start_endpoint
from callrouter.media.worker.relay import RelayError, Relays
from callrouter.media.worker.slot_watch import SlotWatch
from callrouter.media.worker.wake import Inbox, Waker

logger = logging.getLogger(__name__)

FOREVER_MS = 24 * 3600 * 1000  # "until woken": nothing in the worker is timed


class Worker:
    def __init__(self, name: str, sip_port: int, rtp_port: int, out: BinaryIO, pj_log_level: int = 1,
                 bind: str = "127.0.0.1", rtp_port_range: int = 200) -> None:
        self.name, self.sip_port, self.rtp_port, self.bind = name, sip_port, rtp_port, bind
        self._out: BinaryIO | None = out
        self.stopping = False  # set by end of stdin, SIGTERM or a closed event pipe
        self.retiring = False  # set by `retire`: new calls refused, exit once no leg is left
        self._queue: collections.deque[tuple] = collections.deque()
        self._main = threading.get_ident()
        self.ep, self.cap = start_endpoint(sip_port, bind, pj_log_level)
        self.waker = Waker(bind, sip_port)
        self.clock = MediaClock(self.ep)
        relays = Relays(bind, rtp_port, rtp_port_range, self.emit, self.ep,
                        stopped=lambda relay_id: self.legs.conversations.leg_stopped(relay_id, self.legs.live))
        self.legs = Legs(self.emit, self.post, relays)
        self.slots = SlotWatch(calls_in_use(), lambda: len(self.legs.live), self.emit)
        self.events = CallEvents(name, self.legs, self.post, self.emit, self._send, lambda: self.retiring,
                                 self.slots.check)
        self.account = create_account(name, bind, sip_port, rtp_port, rtp_port_range, self.events.incoming)
        self.commands = Commands(self.legs, self.account, self.post, self.emit, name, bind, sip_port)
        self._due = float("inf")  # the next deadline: a leg's, or the clock's settling check

    # -- event plumbing ----------------------------------------------------------------------

    def post(self, item: tuple) -> None:
        """A pjsua callback's item, handled on the main loop; from another thread it wakes it."""
        self._queue.append(item)
        if threading.get_ident() != self._main:
            self.waker.wake()

    def stop(self) -> None:
        """Ask the loop to stop (SIGTERM): it wakes and shuts down."""
        self.stopping = True
        self.waker.wake()

    def emit(self, event: p.Event) -> None:
        self._send(p.encode(event))

    def _send(self, line: bytes) -> None:
        if self._out is None:
            return
        try:
            self._out.write(line)
            self._out.flush()
        except (BrokenPipeError, ConnectionResetError):
            logger.warning("controller went away: hanging up and exiting")
            self._out, self.stopping = None, True

    def _error(self, message: str, command: str = "", leg: str = "") -> None:
        logger.warning("%s %s: %s", command or "-", leg or "-", message)
        self.emit(p.Error(message=message, command=command, leg=leg))

    # -- main loop ---------------------------------------------------------------------------

    def run(self, commands_fd: int) -> None:
        self.emit(p.Ready(worker=self.name, sip_port=self.sip_port, cap=self.cap, pid=os.getpid()))
        self.waker.wake_on_signals()
        inbox = Inbox(commands_fd, self.waker)
        inbox.start()
        reader = p.LineReader()
        # Every RTP packet wakes the loop (four calls: 200 times a second): its turn is kept short,
        # the SWIG function called without its Python wrapper.
        handle_events, ep = _pjsua2.Endpoint_libHandleEvents, self.ep
        monotonic, queue, chunks, inf = time.monotonic, self._queue, inbox.chunks, float("inf")
        while not self.stopping:
            due = self._due
            handle_events(ep, FOREVER_MS if due == inf else max(0, int((due - monotonic()) * 1000.0 + 0.999)))
            # The fast path: an RTP packet woke the loop and nothing is waiting.
            if not queue and not chunks and (due == inf or monotonic() < due):
                continue
            self.waker.clear()
            self._drain()
            for data in inbox.take():
                if not data:
                    self.stopping = True
                for line in reader.feed(data):
                    self._handle_line(line)
            self._turn(monotonic())
        self.shutdown()

    def _turn(self, now: float) -> None:
        """After events and commands: deadlines, dropped calls, the clock; and the next deadline."""
        legs = self.legs
        legs.tick(now)
        legs.reap()
        if self.retiring and not legs.busy():
            logger.info("worker %s retired: no leg left, exiting", self.name)
            self.stopping = True
        self.slots.check()
        settle = self.clock.update(legs.media_active(), now)
        due = [t for t in (legs.next_deadline(now), settle, self.slots.next_deadline(now)) if t is not None]
        self._due = min(due, default=float("inf"))

    def shutdown(self) -> None:
        """Hang up every leg, let pjsua finish, and only then destroy the library: a pj.Call or
        media object outliving libDestroy aborts the process."""
        logger.info("worker %s shutting down with %s leg(s)", self.name, len(self.legs.live))
        self.legs.stop_all()
        self.ep.hangupAllCalls()
        deadline = time.monotonic() + 2.0
        while self.legs.busy() and time.monotonic() < deadline:
            self.ep.libHandleEvents(20)
            self._drain()
            self.legs.tick(time.monotonic())
        self.legs.live.clear()
        self.legs.dead.clear()
        self._queue.clear()
        gc.collect()
        self.ep.libHandleEvents(50)
        self.account.shutdown()
        self.waker.close()
        self.ep.libDestroy()

    def _handle_line(self, line: bytes | p.ProtocolError) -> None:
        if isinstance(line, p.ProtocolError):
            self._error(str(line))
            return
        try:
            command = p.decode_command(line)
        except p.ProtocolError as exc:
            self._error(str(exc))
            return
        leg = getattr(command, "leg", "") or getattr(command, "relay", "")
        try:
            if isinstance(command, (p.RelayOpen, p.RelayConnect, p.RelayClose)):
                self._relay(command)
            elif isinstance(command, p.Retire):
                self.retiring = True
            elif isinstance(command, p.ReportLegs):
                self._report_legs()
            elif isinstance(command, p.RecordCall) and command.other in self.legs.relays.active:
                self._record_relayed(command)
            else:
                self.commands.execute(command)
        except (Refused, RelayError) as exc:
            self._error(str(exc), command.type, leg)
        except pj.Error as exc:
            self._error(f"pjsua: {exc.info()}", command.type, leg)
        except Exception as exc:  # a bug must not take the other calls down
            logger.exception("command %s failed", command.type)
            self._error(f"internal error: {exc}", command.type, leg)

    def _relay(self, cmd: p.RelayOpen | p.RelayConnect | p.RelayClose) -> None:
        """The pool's relay commands (relay.py); errors name the relay in their `leg`."""
        relays = self.legs.relays
        if isinstance(cmd, p.RelayOpen):
            leg = self.legs.get(cmd.leg)
            if leg.media is None:
                raise Refused("leg has no active audio to relay")
            if cmd.relay in relays.active:
                raise Refused(f"relay {cmd.relay!r} already exists")
            self.legs.stop_player(leg)
            relays.open(cmd.relay, leg)
        elif isinstance(cmd, p.RelayConnect):
            relay = relays.active.get(cmd.relay)
            if relay is None:
                raise Refused(f"no relay {cmd.relay!r} on this worker")
            relays.connect(cmd.relay, cmd.port, self.legs.get(relay.leg))
        else:
            relays.close(cmd.relay)

    def _report_legs(self) -> None:
        """Every live leg as a controller taking this worker over needs it, then the count."""
        legs = [leg for leg in self.legs.live.values() if not leg.ended]
        for leg in legs:
            try:
                info = leg.call.getInfo()
                call_id, peer = info.callIdString, info.remoteUri
            except pj.Error:
                call_id = peer = ""
            relays = ",".join(sorted(r for r, relay in self.legs.relays.active.items() if relay.leg == leg.id))
            self.emit(p.LegReport(leg=leg.id, sip_call_id=call_id, peer=peer, outgoing=leg.outgoing,
                                  state=leg.reported_state if leg.reported_state in p.LEG_STATES else "",
                                  bridged=",".join(sorted(leg.bridged)), relays=relays,
                                  playing=leg.player_path if leg.player is not None else ""))
        self.emit(p.LegsReported(count=len(legs)))
        self.slots.report()

    def _record_relayed(self, cmd: p.RecordCall) -> None:
        """A conversation whose other leg is on another worker: recorded here, the far side from
        the relay's conference port (the pool names the relay as `other`), on this one clock."""
        a = self.legs.get(cmd.leg)
        recordings = self.legs.conversations
        if a.media is None:
            raise Refused("only a leg with active audio can be recorded")
        if cmd.recording in recordings.active or recordings.of_leg(a.id):
            raise Refused("this conversation is already being recorded")
        far = self.legs.relays.far_end(cmd.other)
        for path in (cmd.path, cmd.other_path):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        recordings.start(a, far, cmd)

    def _drain(self) -> None:
        while self._queue:
            item = self._queue.popleft()
            try:
                self.events.handle(item)
            except pj.Error as exc:
                logger.warning("handling %s: pjsua: %s", item[0], exc.info())
            except Exception:
                logger.exception("handling %s failed", item[0])
