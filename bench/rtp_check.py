"""The callers' audio for the bridged benchmark, both ways, checked where it lands.

Every caller's SDP points at one UDP socket of ours. Each media leg that sends to it (a worker's
caller leg) is answered every 20 ms with a packet of a tone only we send; the secretaries' phones
(SIPp with -rtp_echo) send back what reaches them. So a caller leg that gets our tone back has
audio both ways through its bridge: to the secretary, and from her. Hold music and ringback never
match the tone.
"""

from __future__ import annotations

import math
import random
import select
import socket
import struct
import threading
import time

from callrouter.devtools.serve import free_udp_port

PTIME = 0.02


def _alaw(sample: int) -> int:
    sign = 0x80 if sample >= 0 else 0
    sample = min(abs(sample), 32635)
    if sample >= 256:
        exponent = int(math.log2(sample)) - 7
        mantissa = (sample >> (exponent + 3)) & 0x0F
        value = (exponent << 4) | mantissa
    else:
        value = sample >> 4
    return (value | sign) ^ 0x55


TONE = bytes(_alaw(int(9000 * math.sin(2 * math.pi * 697 * i / 8000))) for i in range(160))
_TWICE = TONE + TONE


def similar(payload: bytes) -> bool:
    """Our tone: every packet we send is the same 160 samples, so what comes back through the two
    conference bridges is that frame, shifted by where their frames start (any rotation of it)."""
    return len(payload) == len(TONE) and payload[40:72] in _TWICE


class EchoCheck:
    """One socket standing for every caller's phone; counts, per worker leg, our tone coming back."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", free_udp_port(even=True, span=2)))
        self.port = self.sock.getsockname()[1]
        self.sock.setblocking(False)
        self.legs: dict[tuple[str, int], list[int]] = {}  # source -> [packets, echoed tone packets, seq]
        self.ssrc = random.getrandbits(32)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "EchoCheck":
        self._thread.start()
        return self

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            wait = max(0.0, next_tick - time.monotonic())
            readable, _, _ = select.select([self.sock], [], [], wait)
            if readable:
                self._read()
            if time.monotonic() >= next_tick:
                next_tick += PTIME
                self._send()

    def _read(self) -> None:
        while True:
            try:
                data, source = self.sock.recvfrom(2048)
            except BlockingIOError:
                return
            if len(data) < 12 or data[0] >> 6 != 2:
                continue
            counts = self.legs.setdefault(source, [0, 0, 0])
            counts[0] += 1
            if similar(data[12:]):
                counts[1] += 1

    def _send(self) -> None:
        for source, counts in list(self.legs.items()):
            counts[2] += 1
            header = struct.pack("!BBHII", 0x80, 8, counts[2] & 0xFFFF, (counts[2] * 160) & 0xFFFFFFFF,
                                 self.ssrc ^ hash(source) & 0xFFFFFFFF)
            try:
                self.sock.sendto(header + TONE, source)
            except OSError:
                pass

    def snapshot(self) -> dict[tuple[str, int], tuple[int, int]]:
        return {source: (c[0], c[1]) for source, c in list(self.legs.items())}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
