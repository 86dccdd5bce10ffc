"""Shared pieces of the cluster tests: the tier the nodes run, a real HTTP SMS gateway on loopback
counting what each node sends, and the node processes."""

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callrouter.domain.model import EscalationStep, EscalationTier
from tests.escalation.support import dialplan

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 2.5
TIER = EscalationTier("urgent", (EscalationStep("sms", "dr-martin", wait_s=WAIT_S),
                                 EscalationStep("sms", "dr-roux", wait_s=WAIT_S),
                                 EscalationStep("sms", "dr-martin", wait_s=WAIT_S)))
PLAN = dialplan(escalation={"urgent": TIER})
STEPS = tuple((0, i) for i in range(len(TIER.steps)))


@dataclass
class Received:
    node: str          # the gateway path's first part: which node sent it
    key: str           # the Idempotency-Key: esc-{id}-{round}-{step}, or esc-{id}-duty-{n}
    to: str
    at: float          # time.monotonic() at arrival


@dataclass
class Gateway:
    """An HTTP SMS gateway on loopback: records every request; `hold` names keys it never answers
    (the sender is caught mid-send)."""

    requests: list[Received] = field(default_factory=list)
    hold: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers["Idempotency-Key"]
                with gateway.lock:
                    gateway.requests.append(Received(self.path.split("/")[1], key, body["to"], time.monotonic()))
                    held = key in gateway.hold
                if held:
                    gateway.release.wait(120)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(json.dumps({"id": f"gw-{key}"}).encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # its sender was killed

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, node: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{node}/sms"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def of(self, node: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if node is None or r.node == node]

    def keys(self, node: str | None = None) -> list[str]:
        return [r.key for r in self.of(node)]


def until(condition, what: str, bound_s: float = 90.0) -> None:
    """Poll `condition` (bounded: fails after `bound_s`, never asserts on how long it took)."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")


def spawn(db_url: str, node: str, gateway: Gateway, log, lease_s: float, renew_s: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.cluster.node_child", db_url, node, gateway.url(node),
                             str(lease_s), str(renew_s)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
