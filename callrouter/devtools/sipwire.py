"""Raw SIP over loopback UDP or TCP for hostile-input runs: the exact bytes out, every answer back,
and each transaction finished as a caller would (ACK a final answer to an INVITE, BYE an answered
one), so that nothing is left for the service's timers to clean up.

A message is rendered only once its socket exists, because its Via must name the socket's port:
`Render` gets the local address, port and transport and returns the bytes to send. What came back
is a `Transaction`: the status of every response in order, and `outcome` ("404"; "drop" when
nothing came; "1xx" when only provisional answers came; "relayed" when the request itself came
back, sent on by the peer). Also here: the OPTIONS a live peer answers, the number of calls a media
worker can still take at once, and the processes a service runs.
"""

from __future__ import annotations

import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length"}


@dataclass(frozen=True)
class Peer:
    """Where messages go (host, port, transport) and the loopback address they come from."""

    host: str
    port: int
    transport: str = "udp"
    source: str = "127.0.0.1"

    def with_source(self, source: str) -> "Peer":
        return Peer(self.host, self.port, self.transport, source)


@dataclass(frozen=True)
class Local:
    """The sending socket, as a message names it in its Via and Contact."""

    ip: str
    port: int
    transport: str  # "UDP" or "TCP", as written in a Via


Render = Callable[[Local], bytes]


def header_values(message: bytes, name: str) -> list[bytes]:
    """Every value of header `name` (compact forms too) in a message's head."""
    out = []
    for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, sep, value = line.partition(b":")
        key = key.strip().lower().decode("latin-1")
        if sep and COMPACT.get(key, key) == name:
            out.append(value.strip())
    return out


def status_of(message: bytes) -> int | None:
    match = re.match(rb"SIP/2\.0 (\d{3})[ \r]", message)
    return int(match.group(1)) if match else None


def frames(buffer: bytearray) -> list[bytes]:
    """Complete messages cut off the front of a TCP stream buffer (Content-Length framing)."""
    out = []
    while True:
        while buffer.startswith(b"\r\n"):  # keep-alives
            del buffer[:2]
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return out
        lengths = header_values(bytes(buffer[:end + 4]), "content-length")
        length = int(lengths[0]) if lengths and lengths[0].isdigit() else 0
        if len(buffer) < end + 4 + length:
            return out
        out.append(bytes(buffer[:end + 4 + length]))
        del buffer[:end + 4 + length]


@dataclass
class Transaction:
    """One request sent from its own socket, the answers it got, and the requests of the dialog
    it may have opened (an answered INVITE is ACKed and hung up by `complete`)."""

    peer: Peer
    render: Render
    sock: socket.socket = field(init=False)
    local: Local = field(init=False)
    request: bytes = b""
    responses: list[bytes] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)
    _stream: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        if self.peer.transport == "tcp":
            self.sock = socket.create_connection((self.peer.host, self.peer.port), timeout=5,
                                                 source_address=(self.peer.source, 0))
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((self.peer.source, 0))
        self.local = Local(self.peer.source, self.sock.getsockname()[1], self.peer.transport.upper())

    def send(self) -> "Transaction":
        self.request = self.render(self.local)
        self._send(self.request)
        return self

    def _send(self, data: bytes) -> None:
        try:
            if self.peer.transport == "tcp":
                self.sock.sendall(data)
            else:
                self.sock.sendto(data, (self.peer.host, self.peer.port))
        except OSError:
            pass  # a peer that closed the connection: what came back tells the rest

    def _receive(self, timeout: float) -> list[bytes]:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            if self.peer.transport == "tcp":
                chunk = self.sock.recv(65535)
                if not chunk:
                    time.sleep(timeout)  # closed by the peer: nothing more will come
                    return []
                self._stream += chunk
                return frames(self._stream)
            data, _ = self.sock.recvfrom(65535)
            return [data]
        except (socket.timeout, ConnectionRefusedError, ConnectionResetError):
            return []
        except OSError:
            time.sleep(timeout)
            return []

    def wait_final(self, window: float = 1.0, final_timeout: float = 8.0) -> int | None:
        """Read answers until a final one: `window` s for a first answer, `final_timeout` s once
        a provisional came. The final status, or None."""
        deadline = time.monotonic() + window
        while (left := deadline - time.monotonic()) > 0:
            for message in self._receive(left):
                status = status_of(message)
                if status is None:
                    if re.match(rb"[A-Za-z]+ \S+ SIP/2\.0\r\n", message):
                        self.requests.append(message)  # sent back to us: someone relayed it
                    continue
                self.responses.append(message)
                if status >= 200:
                    return status
                deadline = max(deadline, time.monotonic() + final_timeout)
        return None

    @property
    def statuses(self) -> list[int]:
        return [status_of(m) for m in self.responses]

    @property
    def final(self) -> bytes | None:
        return next((m for m in self.responses if status_of(m) >= 200), None)

    @property
    def outcome(self) -> str:
        final = self.final
        if final is not None:
            return str(status_of(final))
        if self.requests:
            return "relayed"
        return "1xx" if self.responses else "drop"

    def complete(self, timeout: float = 5.0) -> None:
        """ACK a final answer to an INVITE; hang up (BYE) an answered one. Quietly does nothing
        for a request too broken to be acknowledged: the peer's timers end that transaction."""
        final = self.final
        if final is None or not self.request.startswith(b"INVITE "):
            return
        try:
            if status_of(final) >= 300:
                self._send(self._ack_failure(final))
                return
            ack, bye = self._dialog_requests(final)
        except (IndexError, ValueError):
            return
        self._send(ack)
        self._send(bye)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if any(b" BYE\r\n" in m.split(b"\r\n\r\n")[0] and status_of(m) for m in self._receive(left)):
                return

    def _ack_failure(self, final: bytes) -> bytes:
        ruri = self.request.split(b"\r\n", 1)[0].split(b" ")[1]
        cseq = header_values(self.request, "cseq")[0].split()[0]
        lines = [b"ACK " + ruri + b" SIP/2.0", b"Via: " + header_values(self.request, "via")[0],
                 b"Max-Forwards: 70", b"From: " + header_values(self.request, "from")[0],
                 b"To: " + header_values(final, "to")[0], b"Call-ID: " + header_values(self.request, "call-id")[0],
                 b"CSeq: " + cseq + b" ACK", b"Content-Length: 0"]
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def _dialog_requests(self, final: bytes) -> tuple[bytes, bytes]:
        contact = re.search(rb"<([^>]+)>", header_values(final, "contact")[0])
        target = contact.group(1) if contact else header_values(final, "contact")[0].split(b";")[0]
        routes = [r.strip() for value in reversed(header_values(final, "record-route"))
                  for r in reversed(value.split(b","))]
        cseq = int(header_values(self.request, "cseq")[0].split()[0])
        common = [b"Max-Forwards: 70", *(b"Route: " + r for r in routes),
                  b"From: " + header_values(self.request, "from")[0], b"To: " + header_values(final, "to")[0],
                  b"Call-ID: " + header_values(self.request, "call-id")[0]]

        def request(method: bytes, number: int) -> bytes:
            via = b"Via: SIP/2.0/%s %s:%d;branch=z9hG4bK%016x;rport" % (
                self.local.transport.encode(), self.local.ip.encode(), self.local.port, random.getrandbits(64))
            lines = [method + b" " + target + b" SIP/2.0", via, *common, b"CSeq: %d %s" % (number, method),
                     b"Content-Length: 0"]
            return b"\r\n".join(lines) + b"\r\n\r\n"

        return request(b"ACK", cseq), request(b"BYE", cseq + 1)

    def close(self) -> None:
        self.sock.close()


def exchange(peer: Peer, render: Render, window: float = 1.0, final_timeout: float = 8.0) -> Transaction:
    """Send one rendered request, wait for its final answer, finish its transaction, close."""
    tx = Transaction(peer, render)
    try:
        tx.send()
        tx.wait_final(window, final_timeout)
        tx.complete()
    finally:
        tx.close()
    return tx


def options(local: Local, host: str, port: int, user_agent: str = "callrouter-hostile") -> bytes:
    """An out-of-dialog OPTIONS to the peer itself (no user part), as a liveness probe."""
    tag = "%016x" % random.getrandbits(64)
    lines = [f"OPTIONS sip:{host}:{port} SIP/2.0",
             f"Via: SIP/2.0/{local.transport} {local.ip}:{local.port};branch=z9hG4bK{tag};rport",
             "Max-Forwards: 70", f"From: <sip:probe@{local.ip}>;tag={tag[:8]}", f"To: <sip:{host}:{port}>",
             f"Call-ID: probe-{tag}", "CSeq: 1 OPTIONS", f"User-Agent: {user_agent}", "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answers_options(peer: Peer, timeout: float = 3.0) -> bool:
    """True when the peer answers an OPTIONS with 200: it is alive and not stuck."""
    tx = exchange(peer, lambda local: options(local, peer.host, peer.port), window=timeout)
    return tx.outcome == "200"


def invite(local: Local, host: str, port: int, number: str, caller: str = "+33612345678") -> bytes:
    """A plain INVITE with G.711 SDP (media to a port nobody listens on: signalling only)."""
    tag = "%016x" % random.getrandbits(64)
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 9 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")
    lines = [f"INVITE sip:{number}@{host}:{port} SIP/2.0",
             f"Via: SIP/2.0/{local.transport} {local.ip}:{local.port};branch=z9hG4bK{tag};rport",
             "Max-Forwards: 70", f"From: <sip:{caller}@{local.ip}>;tag={tag[:8]}", f"To: <sip:{number}@{host}>",
             f"Call-ID: slot-{tag}", "CSeq: 1 INVITE", f"Contact: <sip:caller@{local.ip}:{local.port}>",
             "Content-Type: application/sdp", f"Content-Length: {len(sdp)}"]
    return ("\r\n".join(lines) + "\r\n\r\n" + sdp).encode()


def free_call_slots(worker: Peer, number: str, attempts: int = 8, timeout: float = 10.0) -> tuple[int, list[str]]:
    """How many calls a media worker takes at once: `attempts` INVITEs to a number it answers are
    in flight together, the answered ones are counted, then every one is ACKed and hung up.
    Returns (answered, every outcome); the others should be 486 (the worker is full)."""
    txs = [Transaction(worker, lambda local: invite(local, worker.host, worker.port, number))
           for _ in range(attempts)]
    try:
        for tx in txs:
            tx.send()
        threads = [threading.Thread(target=tx.wait_final, args=(timeout, timeout)) for tx in txs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for tx in txs:
            tx.complete()
    finally:
        for tx in txs:
            tx.close()
    outcomes = sorted(tx.outcome for tx in txs)
    return outcomes.count("200"), outcomes


def process_tree(root: int) -> dict[int, str]:
    """pid -> command name of every process under `root` (root excluded), read from /proc."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if rest[0] == "Z":
            continue
        parents[int(entry.name)], names[int(entry.name)] = int(rest[1]), name
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = names[pid]
                frontier.append(pid)
    return found
