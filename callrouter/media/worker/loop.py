"""The worker's main loop: pjsua's events, then the queued callbacks, then stdin's commands, then
the legs' deadlines; and the event pipe to the controller (stdout)."""

from __future__ import annotations

import collections
import gc
import logging
import os
import select
import time
from typing import BinaryIO

import pjsua2 as pj

from callrouter.media import protocol as p
from callrouter.media.worker.callbacks import CallEvents
from callrouter.media.worker.commands import Commands
from callrouter.media.worker.legs import Legs, Refused
from callrouter.media.worker.pjsua import create_account, start_endpoint

logger = logging.getLogger(__name__)


class Worker:
    def __init__(self, name: str, sip_port: int, rtp_port: int, out: BinaryIO, poll_ms: int = 20,
                 pj_log_level: int = 1, bind: str = "127.0.0.1", rtp_port_range: int = 200,
                 idle_poll_ms: int = 100) -> None:
        self.name, self.sip_port, self.rtp_port, self.bind = name, sip_port, rtp_port, bind
        self.poll_ms, self.idle_poll_ms = poll_ms, max(poll_ms, idle_poll_ms)
        self._out: BinaryIO | None = out
        self.stopping = False  # set by end of stdin, SIGTERM or a closed event pipe
        self._queue: collections.deque[tuple] = collections.deque()
        self.ep, self.cap = start_endpoint(sip_port, bind, pj_log_level)
        self.legs = Legs(self.emit, self.post)
        self.events = CallEvents(name, self.legs, self.post, self.emit, self._send)
        self.account = create_account(name, bind, sip_port, rtp_port, rtp_port_range, self.events.incoming)
        self.commands = Commands(self.legs, self.account, self.post, self.emit, name, bind, sip_port)

    # -- event plumbing ----------------------------------------------------------------------

    def post(self, item: tuple) -> None:
        self._queue.append(item)

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
        os.set_blocking(commands_fd, False)
        reader = p.LineReader()
        while not self.stopping:
            busy = self.legs.busy() or self._queue
            self.ep.libHandleEvents(self.poll_ms if busy else self.idle_poll_ms)
            self._drain()
            readable, _, _ = select.select([commands_fd], [], [], 0)
            if readable:
                try:
                    data = os.read(commands_fd, 65536)
                except BlockingIOError:
                    data = None
                if data == b"":
                    self.stopping = True
                elif data:
                    for line in reader.feed(data):
                        self._handle_line(line)
            self.legs.tick(time.monotonic())
            self.legs.reap()
        self.shutdown()

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
        leg = getattr(command, "leg", "")
        try:
            self.commands.execute(command)
        except Refused as exc:
            self._error(str(exc), command.type, leg)
        except pj.Error as exc:
            self._error(f"pjsua: {exc.info()}", command.type, leg)
        except Exception as exc:  # a bug must not take the other calls down
            logger.exception("command %s failed", command.type)
            self._error(f"internal error: {exc}", command.type, leg)

    def _drain(self) -> None:
        while self._queue:
            item = self._queue.popleft()
            try:
                self.events.handle(item)
            except pj.Error as exc:
                logger.warning("handling %s: pjsua: %s", item[0], exc.info())
            except Exception:
                logger.exception("handling %s failed", item[0])
