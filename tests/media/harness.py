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
