"""Real parts for the edge tests: Kamailio from our rendered config, SIPp runs, free loopback ports."""

from __future__ import annotations

import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from callrouter.sip import kamailio
from callrouter.sip.registrations import RegistrationsClient, RegistrationsUnavailable
from callrouter.sip.settings import SipSettings

REPO = Path(__file__).resolve().parents[2]
SIPP_DIR = REPO / "tests" / "sipp"
SIPP = shutil.which("sipp")
KAMAILIO = shutil.which("kamailio")
_runs = itertools.count()
WAIT = 20.0  # generous: waiting on an event, never a timing assertion


def free_port(span: int = 1, host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on `host`, with the `span - 1` ports after it."""
    for _ in range(300):
        port = random.randrange(20000, 59000)
        socks = []
        try:
            for offset in range(span):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind((host, port + offset))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port found")


def wait_for(predicate, timeout: float = WAIT, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class KamailioProc:
    """Kamailio in the foreground (-DD -E) in its own process group; stopped by killing the group."""

    def __init__(self, workdir: Path, sip: SipSettings, realm: str, database_url: str) -> None:
        self.sip = sip
        self.files = kamailio.write_config(workdir / "kamailio", sip, realm=realm,
                                           database_url=database_url, base=workdir)
        self.log_path = workdir / "kamailio.log"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(kamailio.command(sip, self.files), stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=workdir,
                                     env={**os.environ, **kamailio.environment(sip, database_url)})
        self.rpc = RegistrationsClient(sip.rpc_port, timeout=2.0)
        if not wait_for(self._ready, timeout=WAIT):
            self.stop()
            raise AssertionError("Kamailio did not start:\n" + self.log_tail())

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            return True  # reported by the caller through log_tail
        try:
            self.rpc.call("core.version")
        except RegistrationsUnavailable:
            return False
        return True

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        try:  # children left behind by a main process that died: the group, again
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._log.close()


class Sipp:
    """One bounded SIPp run on loopback, in its own process group, from `local_ip`."""

    def __init__(self, workdir: Path, scenario: str | None, *, local_ip: str = "127.0.0.1",
                 port: int | None = None, remote: tuple[str, int] | None = None,
                 calls: int | None = 1, rate: int = 1, timeout_s: int = 40,
                 extra: list[str] | None = None, name: str = "sipp") -> None:
        self.port = port or free_port()
        self.workdir = workdir / f"{name}-{self.port}-{next(_runs)}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.messages = self.workdir / "messages.log"
        args = [SIPP, "-i", local_ip, "-p", str(self.port), "-mi", local_ip,
                "-mp", str(free_port(span=4, host=local_ip)), "-r", str(rate),
                "-timeout", f"{timeout_s}s", "-timeout_error", "-nostdin", "-trace_err",
                "-trace_msg", "-message_file", str(self.messages), "-max_recv_loops", "100"]
        if scenario is not None:
            args[1:1] = ["-sf", str(SIPP_DIR / scenario)]
        if calls is not None:
            args += ["-m", str(calls)]
        args += extra or []
        if remote is not None:
            args.append(f"{remote[0]}:{remote[1]}")
        self.stderr_path = self.workdir / "stderr.log"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._stderr,
                                     cwd=self.workdir, start_new_session=True)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def received(self, method: str) -> int:
        """How many `method` requests this SIPp received (from its message trace)."""
        if not self.messages.exists():
            return 0
        text = self.messages.read_text(errors="replace")
        return sum(1 for block in text.split("----------------------------------------------")
                   if "message received" in block and f"\n{method} sip:" in block)

    def errors(self) -> str:
        text = "".join(p.read_text(errors="replace")[-3000:]
                       for p in sorted(self.workdir.glob("*_errors.log")))
        return text + self.stderr_path.read_text(errors="replace")[-2000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self._stderr.close()


class Reaper:
    """Everything a test started, stopped in reverse order whatever happens."""

    def __init__(self) -> None:
        self._items: list = []
        self._lock = threading.Lock()

    def add(self, item):
        with self._lock:
            self._items.append(item)
        return item

    def close(self) -> None:
        while self._items:
            item = self._items.pop()
            try:
                item.kill() if hasattr(item, "kill") else item.stop()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                pass
