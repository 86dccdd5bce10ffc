"""The engine as a separate process killed with SIGKILL mid-send, then restarted on the same
database: the chain finishes, and the SMS caught mid-send is not sent a second time."""

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from callrouter.store.escalations import EscalationRepository
from callrouter.store.testing import fresh_database

ROOT = Path(__file__).resolve().parents[2]


class Gateway(http.server.ThreadingHTTPServer):
    """Counts SMS requests; holds the first one unanswered (the sender is killed meanwhile)."""

    daemon_threads = True

    def __init__(self):
        self.bodies = []
        self.release = threading.Event()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.bodies.append(json.loads(body))
            first = len(self.server.bodies) == 1
        if first:
            self.server.release.wait(60)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"id": "gw"}')  # HTTP/1.0, no Content-Length: ends at close
        except (BrokenPipeError, ConnectionResetError):
            pass  # the first request's sender was killed

    def log_message(self, *args):
        pass


def until(condition, what, bound_s=60.0):
    """Poll `condition` (bounded: fails after `bound_s`, never asserts on how long it took)."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")


def spawn(db, gateway, mode, log):
    return subprocess.Popen([sys.executable, "-m", "tests.escalation.engine_child", db.url, gateway, mode],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_sigkill_mid_send_then_restart_finishes_the_chain_without_duplicate_sms(tmp_path):
    server = Gateway()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/sms"
    children = []
    try:
        with fresh_database("sqlite", tmp_path) as db, (tmp_path / "child.log").open("w") as log:
            repo = EscalationRepository(db)
            first = spawn(db, url, "start", log)
            children.append(first)
            until(lambda: len(server.bodies) == 1, "the first SMS at the gateway")
            first.send_signal(signal.SIGKILL)
            first.wait(30)
            [view] = repo.active()
            assert [s.state for s in view.steps] == ["sending"]

            second = spawn(db, url, "resume", log)
            children.append(second)
            until(lambda: repo.get(view.id).outcome == "exhausted", "the resumed chain to end")
            view = repo.get(view.id)
            assert [s.state for s in view.steps] == ["unknown", "sent"]
            assert [b["to"] for b in server.bodies] == ["+33611111111", "+33622222222"]
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
                child.wait(30)
        server.release.set()
        server.shutdown()
        server.server_close()
