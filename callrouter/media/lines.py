"""Both ends of the media channel (link.py, service.py) read the same way: JSON lines, each handed
on whole, a bad one logged and skipped so that one garbled line never closes the channel."""

from __future__ import annotations

import logging

from twisted.internet import protocol

from callrouter.media import protocol as p

logger = logging.getLogger(__name__)


class LineProtocol(protocol.Protocol):
    """Calls `line_received(line)` for each complete line; subclasses say what a line does."""

    def __init__(self, max_line: int) -> None:
        self._reader = p.LineReader(max_line)

    def dataReceived(self, data: bytes) -> None:
        for line in self._reader.feed(data):
            if isinstance(line, p.ProtocolError):
                logger.warning("media channel: %s", line)
                continue
            try:
                self.line_received(line)
            except p.ProtocolError as exc:
                logger.warning("media channel: %s", exc)

    def line_received(self, line: bytes) -> None:
        raise NotImplementedError
