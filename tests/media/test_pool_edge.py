"""The pool following the load behind the real edge: one `callrouter serve` (Kamailio, real
workers) with small pool settings, SIPp patients through Kamailio, the dispatcher read over its
RPC. A burst beyond the pool's size is served by workers added on the way; idle workers leave the
dispatcher, then retire; a call in progress is never on a retired worker.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from callrouter.devtools import sipp as scen
from callrouter.devtools.serve import CLI, ServeProcess, base_config, edge_config, free_udp_port
from tests.media.harness import SIPP

pytestmark = [pytest.mark.integration,
              pytest.mark.needs(SIPP is None, reason="SIPp (Debian sip-tester) is not installed")]

REPO = Path(__file__).resolve().parents[2]
NUMBER = "+33100000055"
IDLE_S = 4.0
DIALPLAN = f"""\
practice: elastic
name: Cabinet Élastique
timezone: Europe/Paris
numbers: ["{NUMBER}"]
hours:
  daily: ["00:00-24:00"]
queues:
  general: {{label: Secrétariat}}
ivr:
  triage:
    prompt: triage_menu
    timeout: 60s
    retries: 0
    options:
      "3": {{reason: rendez-vous, queue: general}}
routes:
  open: {{ivr: triage}}
  closed: {{ivr: triage}}
  holiday: {{ivr: triage}}
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    subprocess.run([CLI, "prompts", "build"], cwd=REPO, check=True, capture_output=True, timeout=300)
    root = tmp_path_factory.mktemp("elastic")
    (root / "dialplans").mkdir()
    (root / "dialplans" / "elastic.yaml").write_text(DIALPLAN)
    config = base_config(root, root / "dialplans", REPO / "prompts", workers=12, sip=edge_config(root))
    config["media"].update(legs_wanted=4, workers_min=1, workers_max=12, spare_calls=2, arrival_lead_seconds=1.0,
                           idle_retire_seconds=IDLE_S, retire_grace_seconds=0.5, rtp_ports_per_worker=40)
    config["sip"]["worker_max_calls"] = 4  # a caller takes one slot: the pool keeps the rest
    svc = ServeProcess(root, config).start()
    svc.wait_edge_ready(1, timeout=60)
    yield svc
    assert svc.stop(timeout=60) == [], "processes left behind"


def dispatcher(svc: ServeProcess) -> dict[int, str]:
    """Worker port -> the dispatcher's flags for it (A: active, I: inactive, D: disabled...)."""
    result = svc.kamailio_rpc("dispatcher.list")
    out = {}
    for group in result["RECORDS"]:
        for target in group["SET"]["TARGETS"]:
            dest = target["DEST"]
            out[int(dest["URI"].rsplit(":", 1)[1])] = dest["FLAGS"]
    return out


def callers(svc: ServeProcess, tmp: Path, name: str, calls: int, rate: float, hold_ms: int) -> subprocess.Popen:
    scenario = scen.caller(tmp, name, [("pause", hold_ms)], end="bye")
    args = [SIPP, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(free_udp_port()), "-m", str(calls),
            "-l", str(calls), "-r", str(rate), "-s", NUMBER, "-set", "rtp_port", str(free_udp_port(even=True)),
            "-set", "caller", "+33611223344", "-timeout", f"{int(calls / rate + hold_ms / 1000 + 60)}s",
            "-timeout_error", "-nostdin", "-trace_err", "-trace_stat", "-fd", "1",
            f"127.0.0.1:{svc.config['sip']['udp_port']}"]
    return subprocess.Popen(args, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def errors(tmp: Path) -> str:
    return "".join(path.read_text(errors="replace")[-2000:] for path in tmp.glob("*_errors.log"))


class Peak(threading.Thread):
    """The most workers ready while it runs."""

    def __init__(self, svc: ServeProcess) -> None:
        super().__init__(daemon=True)
        self.svc, self.peak, self.done = svc, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            try:
                self.peak = max(self.peak, int(self.svc.metrics().get("callrouter_media_workers", 0)))
            except OSError:
                pass


def workers(svc: ServeProcess) -> int:
    return int(svc.metrics()["callrouter_media_workers"])


def test_a_burst_beyond_the_pools_size_is_served_by_workers_added_on_the_way(service, tmp_path):
    start = workers(service)
    assert start <= 2
    peak = Peak(service)
    peak.start()
    burst = callers(service, tmp_path, "burst", calls=20, rate=5, hold_ms=6000)
    code = burst.wait(timeout=120)
    peak.done.set()
    assert code == 0, errors(tmp_path)                       # every call answered and ended well
    assert peak.peak >= 5, f"{peak.peak} workers at most"    # 20 callers: 5 workers of 4 slots at least
    records = service.calls(wait_closed=20)
    assert len(records) == 20 and all(r.outcome != "failed" for r in records)


def test_idle_workers_leave_the_dispatcher_then_retire_and_a_call_in_progress_is_never_on_one(service, tmp_path):
    service.wait_metric("callrouter_media_workers", lambda v: v >= 3, timeout=5)  # still grown from the burst
    # A long call stays up while the pool shrinks around it; short ones keep coming meanwhile.
    long_call = callers(service, tmp_path, "long", calls=1, rate=1, hold_ms=int(IDLE_S * 4000))
    time.sleep(1.0)
    trickle = callers(service, tmp_path, "trickle", calls=8, rate=0.5, hold_ms=1500)
    seen_disabled_alive: set[int] = set()
    deadline = time.monotonic() + IDLE_S * 4
    while time.monotonic() < deadline:
        alive = {int(a[a.index("--sip-port") + 1]) for a in _worker_argvs(service)}
        for port, flags in dispatcher(service).items():
            if port in alive and flags.startswith("D"):
                seen_disabled_alive.add(port)               # out of the dispatcher, not stopped yet
        time.sleep(0.1)
    assert long_call.wait(timeout=60) == 0, errors(tmp_path)
    assert trickle.wait(timeout=60) == 0, errors(tmp_path)
    assert seen_disabled_alive, "no retiring worker was seen taken out of the dispatcher first"
    service.wait_metric("callrouter_media_workers", lambda v: v <= 2, timeout=IDLE_S * 3)
    records = service.calls(wait_closed=29)
    assert all(r.outcome != "failed" for r in records), [(r.outcome, r.worker) for r in records]
    assert "worker_lost" not in service.log_text() and "died" not in service.log_text()
    retired = [line for line in service.log_text().splitlines() if "retired" in line and "media worker" in line]
    assert retired


def _worker_argvs(svc: ServeProcess) -> list[list[str]]:
    out = []
    for pid in svc.worker_pids().values():
        try:
            out.append([a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a])
        except OSError:
            pass
    return out


def test_retired_positions_serve_again_when_the_load_comes_back(service, tmp_path):
    """A port the edge was told to leave (disabled) is active again once a new worker is ready on it."""
    service.wait_metric("callrouter_media_workers", lambda v: v <= 2, timeout=IDLE_S * 3)
    disabled = [port for port, flags in dispatcher(service).items() if flags.startswith("D")]
    assert disabled, dispatcher(service)
    burst = callers(service, tmp_path, "again", calls=16, rate=5, hold_ms=4000)
    assert burst.wait(timeout=120) == 0, errors(tmp_path)
    flags = dispatcher(service)
    assert any(flags[port].startswith("A") for port in disabled), flags
