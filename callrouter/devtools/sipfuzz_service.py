"""What the fuzz campaign (sipfuzz.py) checks on a real `callrouter serve`, and the service it
starts for a long run: one practice, two media workers behind the edge, calls trusted from loopback.

`ServiceChecks` takes its baseline when built (the service's processes, each worker's free call
slots) and, called after a burst, lists what went wrong by kind: "crash" (a process gone or
replaced), "hang" (an OPTIONS not answered by the edge or a worker), "slots" (a worker that no
longer takes as many calls at once as before, or a pool that counts fewer free call slots than
before, once every call of the burst has had time to end),
"call" (a patient's SIPp call through the edge not answered, or answered without audio).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from callrouter.devtools import sipp as scen
from callrouter.devtools.serve import ServeProcess, base_config, edge_config, free_udp_port
from callrouter.devtools.sipwire import Peer, answers_options, free_call_slots, process_tree

REPO = Path(__file__).resolve().parents[2]
NUMBER = "+33100000077"
POOL_FREE = 'callrouter_media_call_slots{state="free"}'  # the pool's gauge (media/pool_metrics.py)
SIPP = shutil.which("sipp") or "sipp"
DIALPLAN = """\
practice: essai-fuzz
name: Cabinet Essai
timezone: Europe/Paris
numbers: ["{number}"]
hours:
  daily: ["00:00-24:00"]
queues:
  general: {{label: Secrétariat, wrap_up: 1s, announce_interval: 30s}}
ivr:
  triage:
    prompt: triage_menu
    timeout: 5s
    retries: 0
    on_timeout: {{queue: general}}
    options:
      "3": {{reason: rendez-vous, queue: general}}
routes:
  open: {{ivr: triage}}
  closed: {{ivr: triage}}
  holiday: {{ivr: triage}}
  overflow: {{wait_max: 60s, queue_max: 5, then: {{voicemail: true}}}}
"""


class RtpCounter:
    """A UDP socket standing for the patient's RTP port: counts the packets that carry sound."""

    def __init__(self, ip: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, free_udp_port(even=True, span=2)))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.audible = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        silent = {0xD5, 0x55, 0xD4, 0x54}
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            payload = data[12:]
            if len(data) > 12 and data[0] >> 6 == 2 and sum(b not in silent for b in payload) > len(payload) // 4:
                self.audible += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def sipp_call(svc: ServeProcess, workdir: Path, number: str, trunk_ip: str = "127.0.0.1",
              listen_ms: int = 1500) -> str | None:
    """A patient's call from the trunk through the edge: answered, the prompt heard for
    `listen_ms`, then hung up. None when it went well, else what went wrong."""
    workdir.mkdir(parents=True, exist_ok=True)
    scenario = scen.caller(workdir, "fuzz_patient", [("pause", listen_ms)], end="bye")
    rtp = RtpCounter(trunk_ip)
    args = [SIPP, "-sf", str(scenario), "-i", trunk_ip, "-p", str(free_udp_port()), "-mi", trunk_ip,
            "-mp", str(free_udp_port(even=True, span=4)), "-m", "1", "-l", "1", "-r", "1", "-s", number,
            "-timeout", "30s", "-timeout_error", "-nostdin", "-max_recv_loops", "100",
            "-set", "rtp_port", str(rtp.port), "-set", "caller", "+33611223344",
            f"127.0.0.1:{svc.config['sip']['udp_port']}"]
    try:
        done = subprocess.run(args, cwd=workdir, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "the SIPp call did not end within 60 s"
    finally:
        rtp.close()
    if done.returncode != 0:
        return f"the SIPp call failed (exit {done.returncode}): {done.stderr.decode(errors='replace')[-300:]}"
    if rtp.audible < 20:
        return f"the SIPp call was answered but heard {rtp.audible} packets of sound"
    return None


class ServiceChecks:
    """The baseline of a running service, and what differs from it after a burst."""

    def __init__(self, svc: ServeProcess, number: str, workdir: Path, trunk_ip: str = "127.0.0.1",
                 settle_s: float = 40.0, call: bool = True) -> None:
        self.svc, self.number, self.workdir, self.trunk_ip = svc, number, workdir, trunk_ip
        self.settle_s, self.call = settle_s, call
        self.edge = Peer("127.0.0.1", svc.config["sip"]["udp_port"], source=trunk_ip)
        self.workers = [Peer("127.0.0.1", port) for port in svc.worker_ports()]
        self.processes = process_tree(svc.proc.pid)
        self.slots = {w.port: self.free_slots(w) for w in self.workers}
        # The pool's own count (its gauge, sampled each second) must come back to the same.
        svc.wait_metric(POOL_FREE, lambda v: v == sum(self.slots.values()), timeout=settle_s)
        self.calls = 0

    def free_slots(self, worker: Peer, expected: int | None = None) -> int:
        """The calls `worker` takes at once; with `expected`, retried until it is reached or
        `settle_s` has passed (calls of a burst may still be ending)."""
        deadline = time.monotonic() + (self.settle_s if expected is not None else 0)
        while True:
            answered, _ = free_call_slots(worker, self.number)
            if expected is None or answered >= expected or time.monotonic() > deadline:
                return answered
            time.sleep(0.5)

    def __call__(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {"crash": [], "hang": [], "slots": [], "call": []}
        now = process_tree(self.svc.proc.pid)
        if self.svc.proc.poll() is not None:
            found["crash"].append(f"callrouter serve exited with {self.svc.proc.returncode}")
        for pid, name in self.processes.items():
            if now.get(pid) != name:
                found["crash"].append(f"{name} (pid {pid}) is gone")
        for peer, what in [(self.edge, "the edge"), *((w, f"the worker on port {w.port}") for w in self.workers)]:
            if not answers_options(peer):
                found["hang"].append(f"{what} did not answer an OPTIONS")
        for worker in self.workers:
            free = self.free_slots(worker, self.slots[worker.port])
            if free != self.slots[worker.port]:
                found["slots"].append(f"the worker on port {worker.port} takes {free} calls at once, "
                                      f"{self.slots[worker.port]} before")
        try:
            self.svc.wait_metric(POOL_FREE, lambda v: v == sum(self.slots.values()), timeout=self.settle_s)
        except AssertionError:
            found["slots"].append(f"the pool counts {self.svc.metrics().get(POOL_FREE)} free call slots, "
                                  f"{sum(self.slots.values())} before")
        if self.call and not found["crash"]:
            self.svc.wait_edge_ready(len(self.workers))
            self.calls += 1
            problem = sipp_call(self.svc, self.workdir / f"call-{self.calls}", self.number, self.trunk_ip)
            if problem:
                found["call"].append(problem)
        return found


def start_service(root: Path, trunk_ip: str = "127.0.0.1", workers: int = 2) -> ServeProcess:
    """`callrouter serve` with the edge, `workers` media workers and one practice (NUMBER)."""
    dialplans = root / "dialplans"
    dialplans.mkdir(parents=True, exist_ok=True)
    (dialplans / "essai-fuzz.yaml").write_text(DIALPLAN.format(number=NUMBER), encoding="utf-8")
    # A worker silent for a second is skipped (2 s in production): loopback answers take ms.
    sip = edge_config(root) | {"trusted_trunks": [trunk_ip], "worker_answer_timeout_ms": 1000}
    svc = ServeProcess(root, base_config(root, dialplans, REPO / "prompts", workers=workers, sip=sip)).start()
    try:
        svc.wait_edge_ready(workers)
    except BaseException:
        svc.stop()
        raise
    return svc
