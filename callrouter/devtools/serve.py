"""`callrouter serve` as a child process on free loopback ports, and what can be read from outside."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

CLI = str(Path(sys.executable).with_name("callrouter"))
RUNNING = "callrouter running:"  # logged once calls can be served (callrouter.app)


def free_udp_port(even: bool = False, span: int = 1) -> int:
    """A UDP port (and the `span - 1` after it) free on 127.0.0.1 right now."""
    for _ in range(500):
        port = random.randrange(20000, 59000, 2 if even else 1)
        socks = []
        try:
            for offset in range(span):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port + offset))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port found")


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServeProcess:
    """A running `callrouter serve`; stop() ends it and checks nothing was left behind."""

    root: Path
    config: dict[str, Any]
    proc: subprocess.Popen | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "serve.log"

    @property
    def metrics_port(self) -> int:
        return self.config["metrics"]["port"]

    @property
    def db_url(self) -> str:
        return self.config["database_url"]

    def worker_ports(self) -> list[int]:
        media = self.config["media"]
        return [media["sip_port_base"] + i for i in range(media["workers_min"])]

    def start(self, ready: Callable[["ServeProcess"], None] | None = None) -> "ServeProcess":
        path = self.root / "callrouter.yaml"
        path.write_text(json.dumps(self.config))  # JSON is YAML
        # As a user installs it: the schema first (serve refuses a database not at the latest migration).
        subprocess.run([CLI, "db", "upgrade", "--config", str(path)], cwd=self.root, check=True,
                       capture_output=True, timeout=120)
        self.proc = subprocess.Popen([CLI, "serve", "--config", str(path)], cwd=self.root,
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        workers = self.config["media"]["workers_min"]
        self.wait_metric("callrouter_media_workers", lambda v: v >= workers, timeout=60)
        self.wait_log(RUNNING, timeout=60)
        if ready:
            ready(self)
        return self

    def wait_log(self, text: str, timeout: float = 30) -> str:
        """The first line of the service's output holding `text`, once written."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = next((line for line in self.log_text().splitlines() if text in line), None)
            if line is not None:
                return line
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"callrouter serve exited ({self.proc.returncode}); log:\n{self.log_tail()}")
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} in the log after {timeout}s; log:\n{self.log_tail()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def metrics(self) -> dict[str, float]:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def wait_metric(self, name: str, predicate: Callable[[float], bool], timeout: float = 30) -> float:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"callrouter serve exited ({self.proc.returncode}); log:\n{self.log_tail()}")
            try:
                value = self.metrics().get(name)
            except OSError:
                value = None
            if value is not None and predicate(value):
                return value
            time.sleep(0.2)
        raise AssertionError(f"{name} = {value} after {timeout}s; log:\n{self.log_tail()}")

    def calls(self, wait_closed: int = 0, timeout: float = 20) -> list:
        """Call records as the service stored them, newest first; waits for `wait_closed` closed."""
        from callrouter.store.calls import CallQuery, CallRepository
        from callrouter.store.db import Database

        db = Database.from_url(self.db_url)
        try:
            deadline = time.monotonic() + timeout
            while True:
                records = CallRepository(db).query(CallQuery(limit=1000))
                if sum(1 for r in records if r.ended_at) >= wait_closed or time.monotonic() > deadline:
                    return records
                time.sleep(0.2)
        finally:
            db.dispose()

    def children(self) -> dict[str, int]:
        """Worker name -> pid, and "kamailio" -> pid of the edge's main process when it runs.

        Read from /proc rather than `ps`, whose output width (and so the command lines) depends on
        the terminal and on $COLUMNS.
        """
        pids: dict[str, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                argv = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
            except OSError:  # gone meanwhile
                continue
            ppid = int(stat.rsplit(") ", 1)[1].split()[1])
            if ppid != self.proc.pid or not argv:
                continue
            if "callrouter.media.worker" in argv and "--name" in argv[:-1]:
                pids[argv[argv.index("--name") + 1]] = int(entry.name)
            elif any("kamailio" in Path(a).name for a in argv[:1]):
                pids["kamailio"] = int(entry.name)
        return pids

    def worker_pids(self) -> dict[str, int]:
        return {k: v for k, v in self.children().items() if k != "kamailio"}

    def kamailio_rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call to the edge (its loopback RPC port)."""
        port = self.config["sip"]["rpc_port"]
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/RPC", data=body,
                                         headers={"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(request, timeout=5).read()).get("result")

    def wait_edge_ready(self, workers: int, timeout: float = 40) -> None:
        """Until the edge's dispatcher sees `workers` media workers answering its probes."""
        deadline = time.monotonic() + timeout
        active = 0
        while time.monotonic() < deadline:
            try:
                result = self.kamailio_rpc("dispatcher.list")
                targets = [t["DEST"] for s in result["RECORDS"] for t in s["SET"]["TARGETS"]]
                active = sum(1 for d in targets if d.get("FLAGS", "").startswith("A"))
                if active >= workers:
                    return
            except (OSError, ValueError, KeyError, TypeError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"{active} media workers active at the edge after {timeout}s; log:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self, timeout: float = 30, sig: int = signal.SIGTERM) -> list[int]:
        """SIGTERM as systemd sends, or SIGINT as Ctrl-C; returns the pids of children left running."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        children = list(self.children().values())
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            raise AssertionError(f"callrouter serve did not stop on signal {sig}")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in children):
            time.sleep(0.1)
        return [p for p in children if _alive(p)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def edge_config(root: Path) -> dict[str, Any]:
    """SIP settings for an edge of its own: free ports, calls trusted from loopback."""
    return {"enabled": True, "listen_address": "127.0.0.1", "udp_port": free_udp_port(), "tcp_port": free_tcp_port(),
            "tls_port": 0, "rpc_port": free_tcp_port(), "trusted_trunks": ["127.0.0.1"],
            "worker_probe_interval_s": 1, "runtime_dir": str(root / "run"), "tls_dir": str(root / "tls")}


def base_config(root: Path, dialplans: Path, prompts: Path, workers: int = 2, agents: dict | None = None,
                sip: dict | None = None) -> dict[str, Any]:
    """Settings for a service of its own on free loopback ports, its database under `root`."""
    base = free_udp_port(span=workers)
    return {
        "database_url": f"sqlite:///{root / 'callrouter.db'}",
        "dialplans": str(dialplans),
        "prompts": str(prompts),
        "http": {"port": free_tcp_port()},
        "metrics": {"port": free_tcp_port()},
        "media": {"sip_port_base": base, "rtp_port_base": free_udp_port(even=True), "rtp_ports_per_worker": 40,
                  "legs_wanted": workers * 4, "workers_min": workers, "workers_max": workers,
                  "restart_delay_seconds": 0.2},
        # Registered softphones take calls without an API login (tests of logins set it back).
        "controller": {"secretaries": agents or {}, "ring_timeout_s": 8.0, "voicemail_dir": str(root / "voicemail"),
                       "login_required": False},
        "sip": sip or {"enabled": False},
        "var_dir": str(root / "var"),
        "node": f"run-{base}",  # its own MQTT client id and topics: runs side by side never collide
    }
