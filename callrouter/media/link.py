"""The controller's end of the media channel (channel.py): the workers the media service holds, as
the pool sees processes.

`WorkerLink` stands where the reactor's `spawnProcess` stood for the pool: `spawnProcess` asks the
service to start a worker and returns a transport whose `write`, `closeStdin` and `signalProcess`
go over the channel; the worker's lines come back to the process protocol's `outReceived`, its end
to `processEnded`. `connect` (when the pool starts) says which workers are already running, with
their ready line, so that a new controller takes them over (`attach`) instead of starting others.
If the channel is lost, every worker is reported ended (the service is gone, and its workers with
it); starting one then fails at once, and the pool's restart backoff retries until it is back.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from twisted.internet import defer, error, protocol, task
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
from twisted.python.failure import Failure

from callrouter.media import channel as ch
from callrouter.media import protocol as p
from callrouter.media.lines import LineProtocol

logger = logging.getLogger("callrouter.media.pool")


class RemoteTransport:
    """A worker process reached through the media service."""

    def __init__(self, link: "WorkerLink", name: str, proto: Any, pid: int | None = None) -> None:
        self._link, self.name, self.proto, self.pid = link, name, proto, pid
        self.ended = False

    def write(self, data: bytes) -> None:
        self._link.send(ch.frame(self.name, data))

    def closeStdin(self) -> None:
        self._link.send(ch.control("close_stdin", worker=self.name))

    def signalProcess(self, sig: str) -> None:
        if self.ended:
            raise error.ProcessExitedAlready()
        self._link.send(ch.control("signal", worker=self.name, signal=sig))

    def end(self, code: int | None, sig: Any) -> None:
        if self.ended:
            return
        self.ended = True
        if code == 0:
            reason: Exception = error.ProcessDone(0)
        else:
            reason = error.ProcessTerminated(exitCode=code, signal=sig if isinstance(sig, int) else None)
        self.proto.processEnded(Failure(reason))


class _Client(LineProtocol):
    def __init__(self, link: "WorkerLink") -> None:
        super().__init__(p.MAX_LINE_BYTES + 64)
        self._link = link

    def line_received(self, line: bytes) -> None:
        self._link.received(line)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self._link.lost(self)


class WorkerLink:
    def __init__(self, path: Path, reactor: Any, connect_timeout: float = 30.0, retry: float = 0.2) -> None:
        self.path, self._reactor = Path(path), reactor
        self._timeout, self._retry = connect_timeout, retry
        self._client: _Client | None = None
        self._attached: dict[str, RemoteTransport] = {}
        self._hello: defer.Deferred | None = None
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._client is not None

    @defer.inlineCallbacks
    def connect(self):
        """Connect (retrying while the service starts, up to `connect_timeout`); fires with the
        workers it holds (channel.LiveWorker)."""
        deadline = self._reactor.seconds() + self._timeout
        while True:
            try:
                client = yield connectProtocol(UNIXClientEndpoint(self._reactor, str(self.path)), _Client(self))
                break
            except (error.ConnectError, OSError) as exc:
                if self._reactor.seconds() >= deadline:
                    raise RuntimeError(f"media service not reachable at {self.path}: {exc}") from None
                yield task.deferLater(self._reactor, self._retry, lambda: None)
        self._client = client
        self._hello = defer.Deferred()
        self.send(ch.control("hello"))
        workers = yield self._hello
        logger.info("media service at %s: %d worker(s) running", self.path, len(workers))
        return workers

    def close(self) -> None:
        """Leave the workers to the service (the controller stops, they go on)."""
        self._closing = True
        if self._client is not None:
            self._client.transport.loseConnection()

    # -- the pool's process interface --------------------------------------------------------

    def spawnProcess(self, proto: Any, executable: str, args: list[str], env: Any = None) -> RemoteTransport:
        name = ch.name_of(list(args))
        transport = RemoteTransport(self, name, proto)
        proto.makeConnection(transport)
        if self._client is None:
            logger.warning("media service not connected: worker %s not started", name)
            self._reactor.callLater(0, transport.end, None, None)
            return transport
        self._attached[name] = transport
        self.send(ch.control("spawn", worker=name, args=ch.worker_args(list(args))))
        return transport

    def attach(self, worker: ch.LiveWorker, proto: Any) -> RemoteTransport:
        """Take over a worker already running (its ready line, `worker.ready`, is for the caller to
        replay to `proto` once it holds the transport)."""
        transport = RemoteTransport(self, worker.worker, proto, worker.pid)
        proto.makeConnection(transport)
        self._attached[worker.worker] = transport
        return transport

    # -- the channel -------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self._client is not None:
            self._client.transport.write(data)

    def received(self, line: bytes) -> None:
        name, body = ch.split(line)
        if name != ch.CONTROL:
            transport = self._attached.get(name)
            if transport is not None:
                transport.proto.outReceived(body + b"\n")
            return
        message = ch.decode_control(body, ch.CONTROLS_OUT)
        kind = message["type"]
        if kind == "workers":
            workers = [ch.LiveWorker(str(w["worker"]), int(w["pid"]), tuple(w["args"]),
                                     w["ready"].encode("utf-8") if w.get("ready") else None)
                       for w in message["workers"]]
            hello, self._hello = self._hello, None
            if hello is not None:
                hello.callback(workers)
        elif kind == "spawned":
            transport = self._attached.get(str(message["worker"]))
            if transport is not None:
                transport.pid = message.get("pid")
        elif kind == "exited":
            transport = self._attached.pop(str(message["worker"]), None)
            if transport is not None:
                transport.end(message.get("code"), message.get("signal"))

    def lost(self, client: _Client) -> None:
        if client is not self._client:
            return
        self._client = None
        hello, self._hello = self._hello, None
        if hello is not None:
            hello.errback(RuntimeError("media service closed the channel"))
        if self._closing:
            return
        logger.error("media service channel lost: its workers are gone")
        attached, self._attached = self._attached, {}
        for transport in attached.values():
            transport.end(None, None)
        self._reactor.callLater(self._retry, self._reconnect)

    def _reconnect(self) -> None:
        if self._closing or self._client is not None:
            return
        d = self.connect()
        d.addErrback(lambda f: (logger.warning("media service: %s", f.getErrorMessage()),
                                self._reactor.callLater(1.0, self._reconnect)))
