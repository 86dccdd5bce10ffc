"""The edge's processes (Kamailio, rtpengine) write their logs on stdout/stderr: each line is handed
whole to a relay (which masks and levels it for our log), and the process's end to its service."""

from __future__ import annotations

from typing import Callable

from twisted.internet import protocol
from twisted.python.failure import Failure


class LineRelay(protocol.ProcessProtocol):
    def __init__(self, relay: Callable[[bytes], None], on_ended: Callable[[Failure], None]) -> None:
        self._buffer = b""
        self._relay = relay
        self._on_ended = on_ended

    def errReceived(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._relay(line)

    outReceived = errReceived

    def processEnded(self, reason: Failure) -> None:
        if self._buffer:
            self._relay(self._buffer)
            self._buffer = b""
        self._on_ended(reason)
