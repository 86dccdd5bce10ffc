"""Calls into the IVR through the whole service: Kamailio edge, pjsua2 workers, controller.

Targets (2-core machine): 20 calls/s for 60 s with 0 failed calls; 100 concurrent calls held with 0
failures; INVITE-to-200 p99 under 100 ms at 20 calls/s; an idle worker under 1% of a core and
30 MB RSS; an active call under 0.5% of a core. Also the edge's overhead on INVITE-to-200.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from callrouter.devtools import sipp as scen
from callrouter.devtools.serve import CLI, ServeProcess, base_config, edge_config, free_udp_port

REPO = Path(__file__).resolve().parent.parent
NUMBER = "+33100000077"
WORKERS = 56  # the edge sends a worker at most 2 calls (a bridged call takes 2 of its 4 legs)
HZ = 100  # clock ticks per second in /proc/<pid>/stat

DIALPLAN = f"""\
practice: bench
name: Cabinet Banc d'essai
timezone: Europe/Paris
numbers: ["{NUMBER}"]
hours:
  daily: ["00:00-24:00"]
queues:
  general: {{label: Secrétariat}}
ivr:
  triage:
    prompt: triage_menu
    timeout: 30s
    options:
      "3": {{reason: rendez-vous, queue: general}}
routes:
  open: {{ivr: triage}}
  closed: {{ivr: triage}}
  holiday: {{ivr: triage}}
"""


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(") ", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def all_pids(svc: ServeProcess) -> dict[str, list[int]]:
    """Worker pids, the controller, and Kamailio with its forked children."""
    kids = svc.children()
    kam = kids.pop("kamailio", None)
    groups = {"workers": list(kids.values()), "controller": [svc.proc.pid], "kamailio": []}
    if kam:
        out = subprocess.run(["pgrep", "-g", str(kam)], capture_output=True, text=True).stdout.split()
        groups["kamailio"] = [int(p) for p in out] or [kam]
    return groups


def usage(groups: dict[str, list[int]], seconds: float, run) -> dict[str, float]:
    """% of one core used by each group while `run()` goes on for about `seconds`."""
    before = {g: sum(cpu_ticks(p) for p in pids) for g, pids in groups.items()}
    t0 = time.monotonic()
    run()
    elapsed = max(time.monotonic() - t0, seconds)
    after = {g: sum(cpu_ticks(p) for p in pids) for g, pids in groups.items()}
    return {g: round(100.0 * (after[g] - before[g]) / HZ / elapsed, 2) for g in groups}


def sipp_run(tmp: Path, name: str, port: int, rate: float, calls: int, hold_ms: int, limit: int) -> dict:
    """A bounded SIPp load: `calls` calls at `rate`/s, each held `hold_ms` in the IVR."""
    scenario = scen.caller(tmp, name, [("pause", hold_ms)], end="bye")
    rtp = free_udp_port(even=True)
    args = ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(free_udp_port()), "-m", str(calls),
            "-r", str(rate), "-l", str(limit), "-s", NUMBER, "-set", "rtp_port", str(rtp), "-set", "caller",
            "+33600000000", "-timeout", f"{int(calls / rate + hold_ms / 1000 + 60)}s", "-timeout_error",
            "-nostdin", "-trace_err", "-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-fd", "1", "-max_recv_loops", "1000",
            f"127.0.0.1:{port}"]
    t0 = time.monotonic()
    proc = subprocess.run(args, cwd=tmp, capture_output=True, text=True)
    wall = time.monotonic() - t0
    rtts = []
    for path in tmp.glob(f"{name}_*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 3:  # date_ms;response_time_ms;rtd_no
                try:
                    rtts.append(float(parts[1]))
                except ValueError:
                    pass
    stats = _last_stats(tmp, name)
    rtts.sort()
    return {
        "calls": calls, "rate": rate, "hold_ms": hold_ms, "exit_code": proc.returncode, "wall_s": round(wall, 1),
        "successful": int(stats.get("SuccessfulCall(C)", 0)), "failed": int(stats.get("FailedCall(C)", calls)),
        "invite_to_200_ms": {"p50": _pct(rtts, 0.5), "p99": _pct(rtts, 0.99), "max": rtts[-1] if rtts else None,
                             "samples": len(rtts)},
    }


def _last_stats(tmp: Path, name: str) -> dict[str, str]:
    files = sorted(tmp.glob(f"{name}_*_.csv"))
    if not files:
        return {}
    lines = [line for line in files[-1].read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        return {}
    return dict(zip(lines[0].split(";"), lines[-1].split(";")))


def _pct(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))], 2) if values else None


def run() -> dict:
    subprocess.run([CLI, "prompts", "build"], cwd=REPO, check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "dialplans").mkdir()
        (tmp / "dialplans" / "bench.yaml").write_text(DIALPLAN)
        config = base_config(tmp, tmp / "dialplans", REPO / "prompts", workers=WORKERS, sip=edge_config(tmp))
        config["media"]["rtp_ports_per_worker"] = 16
        svc = ServeProcess(tmp, config).start()
        try:
            svc.wait_edge_ready(WORKERS, timeout=120)
            groups = all_pids(svc)
            time.sleep(5)
            idle = usage(groups, 20, lambda: time.sleep(20))
            idle_rss = [rss_mb(p) for p in groups["workers"]]
            edge_port = svc.config["sip"]["udp_port"]
            direct_port = svc.worker_ports()[0]
            direct = sipp_run(tmp, "direct", direct_port, rate=2, calls=40, hold_ms=300, limit=2)
            via_edge_low = sipp_run(tmp, "edge_low", edge_port, rate=2, calls=40, hold_ms=300, limit=2)
            rate_result: dict = {}
            rate_cpu = usage(groups, 60, lambda: rate_result.update(
                sipp_run(tmp, "rate20", edge_port, rate=20, calls=1200, hold_ms=2000, limit=100)))
            held_result: dict = {}
            # 100 calls arriving at 10/s, each held 20 s: all 100 in the IVR together for about 10 s
            held_cpu = usage(groups, 30, lambda: held_result.update(
                sipp_run(tmp, "held100", edge_port, rate=10, calls=100, hold_ms=20000, limit=100)))
            records = svc.calls()
        finally:
            stray = svc.stop(timeout=60)
    worker_idle_each = idle["workers"] / max(1, len(groups["workers"]))
    concurrent_rate = 20 * 2.0  # calls/s x seconds held
    active_call_cpu = (rate_cpu["workers"] - idle["workers"]) / concurrent_rate
    per_call_all = (sum(rate_cpu.values()) - sum(idle.values())) / concurrent_rate
    p99 = rate_result["invite_to_200_ms"]["p99"]
    met = {
        "20cps_60s_zero_failures": rate_result["failed"] == 0 and rate_result["successful"] == 1200,
        "100_concurrent_zero_failures": held_result["failed"] == 0 and held_result["successful"] == 100,
        "invite_to_200_p99_under_100ms": p99 is not None and p99 < 100,
        "idle_worker_under_1pct_and_30mb": worker_idle_each < 1.0 and statistics.mean(idle_rss) < 30,
        "active_call_under_half_pct": active_call_cpu < 0.5,
    }
    return {
        "workers": WORKERS,
        "idle": {"cpu_pct_of_core": idle, "worker_cpu_pct_each": round(worker_idle_each, 3),
                 "worker_rss_mb_mean": round(statistics.mean(idle_rss), 1), "worker_rss_mb_max": round(max(idle_rss), 1)},
        "edge_overhead": {"direct_to_worker": direct, "through_kamailio": via_edge_low},
        "rate_20cps_60s": {**rate_result, "cpu_pct_of_core": rate_cpu},
        "held_100": {**held_result, "cpu_pct_of_core": held_cpu},
        "per_active_call_cpu_pct": {"workers_only": round(active_call_cpu, 3), "whole_service": round(per_call_all, 3)},
        "call_records_written": len(records),
        "stray_processes": stray,
        "met": met,
        "summary": [
            f"20 calls/s for 60 s through Kamailio: {rate_result['successful']} ok, {rate_result['failed']} failed; "
            f"INVITE-to-200 p50 {rate_result['invite_to_200_ms']['p50']} ms, p99 {p99} ms",
            f"100 calls held together: {held_result['successful']} ok, {held_result['failed']} failed",
            f"idle worker: {worker_idle_each:.2f}% of a core, {statistics.mean(idle_rss):.1f} MB RSS",
            f"active call: {active_call_cpu:.3f}% of a core in the workers, {per_call_all:.3f}% in the whole service",
            f"edge overhead at 2 calls/s: INVITE-to-200 p50 {direct['invite_to_200_ms']['p50']} ms direct, "
            f"{via_edge_low['invite_to_200_ms']['p50']} ms through Kamailio",
            f"targets met: {sum(met.values())}/{len(met)} ({', '.join(k for k, v in met.items() if not v) or 'all'})",
        ],
    }
