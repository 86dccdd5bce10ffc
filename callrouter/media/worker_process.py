"""One worker process as the pool hears it: its events (stdout) decoded, its log (stderr) relayed
line by line with every phone number masked, its end reported."""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

from twisted.internet import protocol
from twisted.python.failure import Failure

from callrouter.domain.masking import mask_numbers_in
from callrouter.media import protocol as p

logger = logging.getLogger("callrouter.media.pool")

_PJSUA_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} ")


class Supervisor(Protocol):
    def _on_event(self, slot: Any, transport: Any, event: p.Event) -> None: ...

    def _on_exit(self, slot: Any, transport: Any, reason: Failure) -> None: ...


class WorkerProcess(protocol.ProcessProtocol):
    def __init__(self, pool: Supervisor, slot: Any) -> None:
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
