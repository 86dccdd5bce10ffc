"""Real parts for the media tests: a worker process driven over its RPC, SIPp runs, RTP sockets."""

from __future__ import annotations

import os
import queue
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from callrouter.devtools.serve import free_udp_port  # noqa: F401 - the tests import it from here
from callrouter.media import protocol as p

REPO = Path(__file__).resolve().parents[2]
SIPP_DIR = REPO / "tests" / "sipp"
SIPP = shutil.which("sipp")
WAIT = 20.0  # generous: waiting on an event, never a timing assertion


class WorkerProc:
    """A `python -m callrouter.media.worker` child; its events are read by a thread into a queue."""

    started: list["WorkerProc"] = []  # stopped after each test by tests/media/conftest.py

    def __init__(self, name: str = "t0", sip_port: int | None = None, extra: list[str] | None = None) -> None:
        self.sip_port = sip_port or free_udp_port()
        self.rtp_port = free_udp_port(even=True)
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "callrouter.media.worker", "--name", name, "--sip-port", str(self.sip_port),
             "--rtp-port", str(self.rtp_port), *(extra or [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
        WorkerProc.started.append(self)
        self.events: queue.Queue[Any] = queue.Queue()
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self.ready: p.Ready = self.expect(p.Ready)

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.events.put(p.decode_event(line))
            except p.ProtocolError as exc:
                self.events.put(exc)
        self.events.put(None)

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr_lines.append(line.decode("utf-8", "replace"))

    def send(self, command: p.Command | bytes) -> None:
        self.proc.stdin.write(command if isinstance(command, bytes) else p.encode(command))
        self.proc.stdin.flush()

    def expect(self, kind: type, timeout: float = WAIT, **match: Any) -> Any:
        """The next event of `kind` (with matching fields); other events are kept in `seen`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind.__name__} {match} within {timeout}s; stderr:\n"
                                     + "".join(self.stderr_lines[-40:]))
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event is None:
                raise AssertionError("worker exited; stderr:\n" + "".join(self.stderr_lines[-40:]))
            self.seen.append(event)
            if isinstance(event, kind) and all(getattr(event, k) == v for k, v in match.items()):
                return event

    @property
    def seen(self) -> list[Any]:
        if not hasattr(self, "_seen"):
            self._seen: list[Any] = []
        return self._seen

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode


class Sipp:
    """One SIPp run (UAC or UAS) in the background, on loopback, bounded by -timeout."""

    started: list["Sipp"] = []  # killed after each test by tests/media/conftest.py

    def __init__(self, scenario: str, *, remote_port: int | None = None, service: str = "+33142000001",
                 calls: int = 1, pause_ms: int = 1000, variables: dict[str, str] | None = None,
                 timeout_s: int = 40, extra: list[str] | None = None, workdir: Path | None = None) -> None:
        self.port = free_udp_port()
        self.media_port = free_udp_port(even=True, span=4)
        args = [SIPP, "-sf", str(SIPP_DIR / scenario), "-i", "127.0.0.1", "-p", str(self.port),
                "-mi", "127.0.0.1", "-mp", str(self.media_port), "-m", str(calls), "-l", str(calls),
                "-r", str(calls), "-s", service, "-d", str(pause_ms), "-timeout", f"{timeout_s}s",
                "-timeout_error", "-nostdin", "-trace_err", "-max_recv_loops", "100"]
        for name, value in (variables or {}).items():
            args += ["-set", name, value]
        if remote_port is not None:
            args.append(f"127.0.0.1:{remote_port}")
        self.workdir = workdir or Path(os.environ.get("TMPDIR", "/tmp"))
        self.proc = subprocess.Popen(args + (extra or []), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, cwd=self.workdir)
        Sipp.started.append(self)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def errors(self) -> str:
        logs = sorted(self.workdir.glob("*_errors.log"))
        text = "".join(path.read_text(errors="replace")[-3000:] for path in logs)
        return text + (self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else "")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class RtpSink:
    """A UDP socket standing for a phone's RTP port; a thread counts what arrives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", free_udp_port(even=True, span=2)))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.packets: list[tuple[int, bytes]] = []  # (payload type, payload)
        self.sources: set[tuple[str, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) >= 12 and data[0] >> 6 == 2:
                self.sources.add(source)
                self.packets.append((data[1] & 0x7F, data[12:]))

    def audible(self, payload_type: int = 8) -> int:
        """Packets of the payload type whose G.711 samples are not all (near) silence."""
        silent = {0xD5, 0x55, 0xD4, 0x54, 0xFF, 0x7F}  # A-law and mu-law zero codes
        return sum(1 for pt, payload in self.packets
                   if pt == payload_type and sum(b not in silent for b in payload) > len(payload) // 4)

    def wait_audible(self, count: int, timeout: float = WAIT) -> int:
        deadline = time.monotonic() + timeout
        while self.audible() < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.audible()

    def send_digit(self, dest: tuple[str, int], event: int, seq: int, timestamp: int) -> None:
        """One RFC 4733 event packet (payload type 101): the start of a digit, then its end."""
        for n, (end, duration) in enumerate(((0, 160), (0x80, 800), (0x80, 800), (0x80, 800))):
            header = struct.pack("!BBHII", 0x80, 101 | (0x80 if n == 0 else 0), seq + n, timestamp, 0x1234)
            self.sock.sendto(header + struct.pack("!BBH", event, end | 10, duration), dest)

    def send_rtp(self, dest: tuple[str, int], payload: bytes, payload_type: int = 8, count: int = 50) -> None:
        ssrc = random.getrandbits(32)
        for seq in range(count):
            header = struct.pack("!BBHII", 0x80, payload_type, seq, seq * len(payload), ssrc)
            self.sock.sendto(header + payload, dest)
            time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


class Observer:
    """The pool's observer in tests: records every event and every lost leg."""

    def __init__(self) -> None:
        self.events: list[tuple[str, p.Event]] = []
        self.lost: list[tuple[str, str, str]] = []

    def media_event(self, worker: str, event: p.Event) -> None:
        self.events.append((worker, event))

    def leg_lost(self, worker: str, leg: str, cause: str) -> None:
        self.lost.append((worker, leg, cause))

    def find(self, kind: type, **match: Any) -> tuple[str, p.Event] | None:
        for worker, event in self.events:
            if isinstance(event, kind) and all(getattr(event, k) == v for k, v in match.items()):
                return worker, event
        return None


class RawSipCaller:
    """A caller over a plain UDP socket, for INVITEs SIPp cannot write: the exact bytes are ours
    (non-UTF-8 header values). It answers what it gets as a UAC would: ACK, then BYE on command.
    `target` is where requests go: the worker itself, or the edge (then Record-Route is followed)."""

    def __init__(self, target: tuple[str, int], bind_ip: str = "127.0.0.1") -> None:
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind_ip, 0))
        self.local = self.sock.getsockname()
        self.call_id = "%016x" % random.getrandbits(64)
        self.tag = "%08x" % random.getrandbits(32)
        self.branch = ""

    def close(self) -> None:
        self.sock.close()

    def _via(self) -> bytes:
        self.branch = "z9hG4bK%012x" % random.getrandbits(48)
        return b"Via: SIP/2.0/UDP %s:%d;branch=%s;rport\r\n" % (self.local[0].encode(), self.local[1],
                                                                 self.branch.encode())

    def invite(self, number: str, caller: str, display: bytes = b"", extra: bytes = b"",
               rtp_port: int = 4000, digits: bool = False) -> None:
        """`digits`: offer RFC 4733 telephone events (payload type 101) beside A-law."""
        host = self.target[0].encode()
        sdp = (b"v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               + (b"m=audio %d RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
                  b"a=fmtp:101 0-15\r\n" if digits else b"m=audio %d RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")
               % rtp_port)
        self.request_uri = b"sip:%s@%s:%d" % (number.encode(), host, self.target[1])
        self.from_header = (b'From: "%s" <sip:%s@%s>;tag=%s\r\n' % (display, caller.encode(),
                                                                     self.local[0].encode(), self.tag.encode()))
        self.to_header = b"To: <sip:%s@%s>\r\n" % (number.encode(), host)
        self._send(b"INVITE %s SIP/2.0\r\n" % self.request_uri + self._via() + b"Max-Forwards: 70\r\n"
                   + self.from_header + self.to_header
                   + b"Call-ID: %s\r\nCSeq: 1 INVITE\r\n" % self.call_id.encode()
                   + b"Contact: <sip:caller@%s:%d>\r\n" % (self.local[0].encode(), self.local[1]) + extra
                   + b"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n" % len(sdp) + sdp)

    def _send(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def final(self, timeout: float = WAIT) -> tuple[int, dict[str, list[bytes]]]:
        """The next final response to the INVITE: (status, {lower-case header: [values]})."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                break
            if not data.startswith(b"SIP/2.0 "):
                continue
            status = int(data[8:11])
            headers: dict[str, list[bytes]] = {}
            self.last_body = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
            for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                headers.setdefault(name.strip().decode("latin-1").lower(), []).append(value.strip())
            if status >= 200 and b"INVITE" in headers.get("cseq", [b""])[0]:
                return status, headers
        raise AssertionError(f"no final response to the INVITE within {timeout}s")

    def ack(self, status: int, headers: dict[str, list[bytes]]) -> None:
        """ACK a final response: a new transaction to the Contact along the route set for a 2xx,
        the INVITE's own transaction otherwise."""
        to = b"To: " + headers["to"][0] + b"\r\n"
        if status >= 300:
            via = b"Via: SIP/2.0/UDP %s:%d;branch=%s;rport\r\n" % (self.local[0].encode(), self.local[1],
                                                                    self.branch.encode())
            self._send(b"ACK %s SIP/2.0\r\n" % self.request_uri + via + b"Max-Forwards: 70\r\n"
                       + self.from_header + to + b"Call-ID: %s\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
                       % self.call_id.encode())
            return
        self._dialog = (headers["contact"][0].strip(b"<>").split(b">")[0], to,
                        [r for value in reversed(headers.get("record-route", [])) for r in value.split(b",")])
        self._in_dialog(b"ACK", 1)

    def _in_dialog(self, method: bytes, cseq: int) -> None:
        contact, to, routes = self._dialog
        route = b"".join(b"Route: %s\r\n" % r.strip() for r in routes)
        self._send(b"%s %s SIP/2.0\r\n" % (method, contact) + self._via() + b"Max-Forwards: 70\r\n" + route
                   + self.from_header + to + b"Call-ID: %s\r\nCSeq: %d %s\r\nContent-Length: 0\r\n\r\n"
                   % (self.call_id.encode(), cseq, method))

    def bye(self, timeout: float = WAIT) -> int:
        """Hang up an answered call; the status of the answer to the BYE."""
        self._in_dialog(b"BYE", 2)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                break
            if data.startswith(b"SIP/2.0 ") and b" BYE\r\n" in data:
                return int(data[8:11])
        raise AssertionError(f"no answer to the BYE within {timeout}s")
