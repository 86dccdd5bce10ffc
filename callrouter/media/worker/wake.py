"""How a media worker's loop learns, at once, that something is waiting for it.

The loop sleeps inside pjsua's `libHandleEvents`, in the select() of pjsip's I/O queue, which
watches the worker's SIP socket and (media on the same queue, see pjsua.py) its RTP sockets.
Nothing else can wake it there, so everything else comes in through the SIP socket:

- a `Waker` sends one short datagram to the worker's own SIP port. pjsip's UDP transport drops
  any packet of 32 bytes or less before parsing it (sip_transport_udp.c, `MIN_SIZE`), so it costs
  one wake-up and nothing else;
- the `Inbox` thread reads the controller's commands from stdin as they come and wakes the loop;
- pjsua callbacks that run on the conference clock's thread (the end of a prompt) post their item
  and wake it;
- a signal (SIGTERM) wakes it through `signal.set_wakeup_fd` on the same socket.

A wake-up already on its way is not sent again: the loop clears the flag before it empties what
was posted, so an item posted after that sends a new one.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import threading


class Waker:
    def __init__(self, bind: str, sip_port: int) -> None:
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.connect((bind, sip_port))
        self._sock.setblocking(False)
        self._pending = False

    def wake(self) -> None:
        if self._pending:
            return
        self._pending = True
        try:
            self._sock.send(b"\0")
        except OSError:  # a full socket buffer: the loop is awake already
            pass

    def clear(self) -> None:
        """Called by the loop before it looks at what was posted."""
        self._pending = False

    def wake_on_signals(self) -> None:
        """Signals (SIGTERM) interrupt the loop's wait: their handler runs as soon as it returns."""
        signal.set_wakeup_fd(self._sock.fileno(), warn_on_full_buffer=False)

    def close(self) -> None:
        try:
            signal.set_wakeup_fd(-1)
        except ValueError:  # not the main thread (tests)
            pass
        self._sock.close()


class Inbox:
    """A thread reading the command pipe; `take()` gives what arrived since (b"" once it ended)."""

    def __init__(self, fd: int, waker: Waker) -> None:
        self._fd, self._waker = fd, waker
        self.chunks: collections.deque[bytes] = collections.deque()
        self._thread = threading.Thread(target=self._read, name="commands", daemon=True)

    def start(self) -> None:
        os.set_blocking(self._fd, True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 65536)
            except OSError:
                data = b""
            self.chunks.append(data)
            self._waker.wake()
            if not data:
                return

    def take(self) -> list[bytes]:
        out = []
        while self.chunks:
            out.append(self.chunks.popleft())
        return out
