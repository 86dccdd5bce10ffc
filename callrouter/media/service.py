"""The media service (`callrouter media`): it holds the worker processes, so that they and their
calls outlive a restart of the controller, and passes their lines to and from the controller over
a unix socket (channel.py).

The controller's pool still decides everything (how many workers, which to retire, when to restart
one); the service starts, signals and stops processes when told, relays each worker's log to its
own log (numbers masked), and, while no controller is connected, restarts a worker that dies by
itself (its calls are gone anyway; the next controller finds a worker ready). Stopping the service
stops its workers: each hangs up its legs and exits (SIGKILL after `stop_timeout_seconds`).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.application import service
from twisted.internet import defer, error, protocol
from twisted.python.failure import Failure

from callrouter.media import channel as ch
from callrouter.media import protocol as p
from callrouter.media.lines import LineProtocol
from callrouter.media.settings import MediaSettings
from callrouter.media.worker_process import WorkerProcess

logger = logging.getLogger(__name__)

SOCKET_NAME = "media.sock"
CHANNEL_MAX_LINE = p.MAX_LINE_BYTES + 64


def socket_path(var_dir: Path) -> Path:
    return Path(var_dir) / SOCKET_NAME


@dataclass
class Held:
    name: str
    args: list[str]
    transport: Any = None
    pid: int = 0
    ready: bytes | None = None
    started: float = 0.0
    ended: defer.Deferred | None = None
    kill_timer: Any = None


class _Named:
    """What WorkerProcess's log relay needs of a slot: its name."""

    def __init__(self, name: str) -> None:
        self.name = name


class HeldProcess(WorkerProcess):
    """A worker's pipes on the service's side: its lines to the controller, its log relayed."""

    def __init__(self, owner: "MediaService", held: Held) -> None:
        super().__init__(owner, _Named(held.name))  # type: ignore[arg-type]
        self._owner, self._held = owner, held

    def outReceived(self, data: bytes) -> None:
        for line in self._out.feed(data):
            if isinstance(line, p.ProtocolError):
                logger.warning("worker %s: %s", self._held.name, line)
                continue
            if self._held.ready is None and b'"type":"ready"' in line:
                self._held.ready = line
            self._owner.from_worker(self._held, line)

    def processEnded(self, reason: Failure) -> None:
        self._owner.worker_ended(self._held, reason)


class ChannelServer(LineProtocol):
    def __init__(self, owner: "MediaService") -> None:
        super().__init__(CHANNEL_MAX_LINE)
        self._owner = owner

    def connectionMade(self) -> None:
        self._owner.client_connected(self)

    def line_received(self, line: bytes) -> None:
        self._owner.from_controller(line)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self._owner.client_gone(self)


class MediaService(service.Service):
    name = "media-service"

    def __init__(self, settings: MediaSettings, path: Path, reactor: Any = None, python: str = sys.executable) -> None:
        if reactor is None:
            from twisted.internet import reactor  # the global reactor, only when none is injected
        self.settings, self.path, self._reactor, self._python = settings, Path(path), reactor, python
        self._workers: dict[str, Held] = {}
        self._client: ChannelServer | None = None
        self._port: Any = None
        self._stopping = False

    # -- service -----------------------------------------------------------------------------

    def startService(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if len(str(self.path)) > 100:
            raise ValueError(f"media socket path too long for a unix socket: {self.path}")
        factory = protocol.Factory.forProtocol(lambda: ChannelServer(self))
        self._port = self._reactor.listenUNIX(str(self.path), factory, mode=0o660, wantPID=True)
        logger.info("media service listening on %s", self.path)
        super().startService()

    def stopService(self) -> defer.Deferred:
        super().stopService()
        self._stopping = True
        waits = []
        for held in list(self._workers.values()):
            held.ended = defer.Deferred()
            waits.append(held.ended)
            try:
                held.transport.closeStdin()  # the worker hangs up its legs and exits
            except Exception:  # pragma: no cover - already gone
                pass
            held.kill_timer = self._reactor.callLater(self.settings.stop_timeout_seconds, self._kill, held)
        d = defer.DeferredList(waits)
        d.addBoth(lambda _: self._close())
        return d

    def _close(self) -> Any:
        if self._client is not None:
            self._client.transport.loseConnection()
        port, self._port = self._port, None
        return port.stopListening() if port is not None else None

    def workers(self) -> list[str]:
        return sorted(self._workers)

    # -- the controller's side ---------------------------------------------------------------

    def client_connected(self, client: ChannelServer) -> None:
        if self._client is not None:
            logger.warning("a new controller connected: dropping the previous one")
            self._client.transport.loseConnection()
        self._client = client
        logger.info("controller connected (%d worker(s) held)", len(self._workers))

    def client_gone(self, client: ChannelServer) -> None:
        if self._client is client:
            self._client = None
            if not self._stopping:
                logger.info("controller gone: the %d worker(s) keep their calls", len(self._workers))

    def _tell(self, data: bytes) -> None:
        if self._client is not None:
            self._client.transport.write(data)

    def from_worker(self, held: Held, line: bytes) -> None:
        if self._client is not None:
            self._client.transport.write(ch.frame(held.name, line + b"\n"))

    def from_controller(self, line: bytes) -> None:
        name, body = ch.split(line)
        if name != ch.CONTROL:
            held = self._workers.get(name)
            if held is None:
                logger.info("media channel: command for worker %s, which is not running", name)
            else:
                held.transport.write(body + b"\n")
            return
        message = ch.decode_control(body, ch.CONTROLS_IN)
        kind = message["type"]
        if kind == "hello":
            self._tell(ch.control("workers", workers=[
                {"worker": h.name, "pid": h.pid, "args": h.args,
                 "ready": h.ready.decode("utf-8") if h.ready is not None else None}
                for h in self._workers.values()]))
            return
        worker = str(message.get("worker", ""))
        held = self._workers.get(worker)
        if kind == "spawn":
            args = ch.checked_args(message.get("args", []))
            if held is not None:  # still running: the controller takes it as it is
                self._tell(ch.control("spawned", worker=worker, pid=held.pid))
                if held.ready is not None:
                    self.from_worker(held, held.ready)
                return
            self._spawn(worker, args)
        elif held is None:
            logger.info("media channel: %s for worker %s, which is not running", kind, worker)
        elif kind == "close_stdin":
            held.transport.closeStdin()
        elif kind == "signal" and message.get("signal") in ch.SIGNALS:
            self._signal(held, message["signal"])

    # -- processes ---------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> None:
        if self._stopping or ch.name_of(args) != name:
            return
        held = Held(name, args, started=self._reactor.seconds())
        argv = [self._python, *ch.WORKER_MODULE, *args]
        held.transport = self._reactor.spawnProcess(HeldProcess(self, held), self._python, argv, env=dict(os.environ))
        held.pid = held.transport.pid
        self._workers[name] = held
        logger.info("media worker %s started (pid %s)", name, held.pid)
        self._tell(ch.control("spawned", worker=name, pid=held.pid))

    def _signal(self, held: Held, sig: str) -> None:
        try:
            held.transport.signalProcess(sig)
        except error.ProcessExitedAlready:
            pass

    def _kill(self, held: Held) -> None:
        held.kill_timer = None
        self._signal(held, "KILL")

    def worker_ended(self, held: Held, reason: Failure) -> None:
        if self._workers.get(held.name) is held:
            del self._workers[held.name]
        if held.kill_timer is not None and held.kill_timer.active():
            held.kill_timer.cancel()
        value = reason.value
        code, sig = getattr(value, "exitCode", None), getattr(value, "signal", None)
        self._tell(ch.control("exited", worker=held.name, code=code, signal=sig))
        if held.ended is not None:
            held.ended.callback(None)
            return
        if self._client is None and not self._stopping:
            quick = self._reactor.seconds() - held.started < self.settings.stable_after_seconds
            delay = self.settings.restart_delay_max_seconds if quick else self.settings.restart_delay_seconds
            logger.error("media worker %s ended (%s) with no controller connected: restarting it in %.1fs",
                         held.name, reason.getErrorMessage(), delay)
            self._reactor.callLater(delay, self._restart, held)

    def _restart(self, held: Held) -> None:
        if held.name not in self._workers and self._client is None:
            self._spawn(held.name, held.args)
