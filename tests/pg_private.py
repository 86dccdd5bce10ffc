"""A PostgreSQL of the test's own, to stop and start at will (the machine's shared one is never
touched): Debian's server binaries, a data directory under the test's tmp dir owned by the
`postgres` system user, a free loopback port, trust authentication.

`stop()` is a crash (pg_ctl stop -m immediate), `freeze()` a hung server (SIGSTOP: connections
accepted by the kernel, never answered), `start()` / `thaw()` bring it back on the same data
directory and port. Missing binaries skip the test, which under CI is a failure (tests/conftest.py).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

BIN = Path(os.environ.get("CALLROUTER_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostgres:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self.log = root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(a) for a in args]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            command = ["runuser", "-u", USER, "--", *command]
        return subprocess.run(command, check=True, capture_output=True, timeout=timeout, cwd="/")

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(BIN / "initdb", "-D", self.data, "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self, timeout: float = 30) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                   f"-c fsync=off -c max_connections=50")
        self._run(BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", str(int(timeout)),
                  "start", timeout=timeout + 10)

    def stop(self) -> None:
        """As if the server crashed: no shutdown checkpoint, every connection cut."""
        self._run(BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "stop")

    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def _signal_all(self, sig: int) -> None:
        """The postmaster and its children (each backend is its own process); none when stopped."""
        if not (self.data / "postmaster.pid").exists():
            return
        main = self.pid()
        pids = [main] + [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == main]
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def freeze(self) -> None:
        """A hung server: its processes stopped, its port still open."""
        self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_all(signal.SIGCONT)

    def ready(self) -> bool:
        return subprocess.run([str(BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-t", "2"],
                              capture_output=True).returncode == 0

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.thaw()
                self.stop()
            except (subprocess.SubprocessError, OSError, ValueError):
                pass
        shutil.rmtree(self.root, ignore_errors=True)


def _ppid(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(") ", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def available() -> str | None:
    """Why a private PostgreSQL cannot run here, or None."""
    for name in ("initdb", "pg_ctl", "pg_isready", "postgres"):
        if not (BIN / name).exists():
            return f"no PostgreSQL server binaries ({BIN / name})"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(USER)
        except KeyError:
            return f"no {USER} system user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "no runuser to run PostgreSQL as the postgres user"
    return None


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A running private PostgreSQL, removed after the test (its directory directly under the
    system's tmp dir: the postgres user cannot enter pytest's, private to the user running it)."""
    reason = available()
    if reason:
        pytest.skip(reason)  # a failure under CI (tests/conftest.py)
    pg = PrivatePostgres(Path(tempfile.mkdtemp(prefix="callrouter-pg-")))
    try:
        pg.init()
        pg.start()
        deadline = time.monotonic() + 20
        while not pg.ready() and time.monotonic() < deadline:
            time.sleep(0.2)
        yield pg
    finally:
        pg.destroy()
