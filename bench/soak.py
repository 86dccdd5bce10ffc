"""The soak: a real `callrouter serve` (Kamailio, a fixed pool of media workers, the controller)
taking calls at a steady rate for `--duration` seconds, while the RSS, open file descriptors and
threads of every process are sampled; it fails when one of them grows or a call fails.

Two SIPp callers run side by side for the whole duration, each sending RTP (a G.711 capture,
looped) while it holds: patients who stay in a practice's menu, and patients queued to a practice
whose secretaries are SIPp phones (answering at once, echoing RTP), so their calls are bridged.

Every `--interval` seconds a sample is read from /proc: per process kind, the controller (the
`callrouter serve` process), the workers (each worker, and their mean per worker) and Kamailio (the
sum over its main process and the children it forked, and the shared memory it has in use, from its
RPC). The warm-up starts with a burst of calls into the menu, so that what grows on demand and
stays (the controller's thread pool, the edge's memory pages) has its working size. The verdict
per kind and measure takes the samples from `--warmup` seconds after the steady load started until
it stops: the mean of their last tenth against the mean of their first tenth (at least 3 samples
each); it grows past the tolerance (5%) when `last > first * 1.05`. A shrinking measure is flat for
this purpose. Where a measure moved by whole steps (threads, descriptors) the result says when.
The workers' figures are the mean per worker, since a worker that a crash replaced starts afresh
(restarts are counted, and fail the run). A call fails when SIPp counts it failed, or when the
service recorded it as failed or never closed it.

The pool is fixed (`workers_min == workers_max`), so that every sample holds the same processes.
Results, with the samples, the verdicts and the parameters, go to bench/results/soak.json; the exit
status is 1 when a measure grew past the tolerance, a call failed, a worker was restarted, a call
slot stayed taken once the calls were over (the pool's free slots before and after), or a process
outlived the service.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import sipp_load as sl
from bench.bench_calls import BRIDGE, MENU, PRACTICE
from callrouter.devtools.serve import CLI, ServeProcess, base_config, edge_config

REPO = Path(__file__).resolve().parent.parent
RESULT = REPO / "bench" / "results" / "soak.json"
FULL_DURATION_S = 1800
TOLERANCE = 0.05
MEASURES = ("rss_mb", "fds", "threads")
KINDS = ("controller", "workers", "kamailio")
SECRETARIES = 20
MIN_TENTH = 3


def proc_sample(pid: int) -> dict[str, float] | None:
    """RSS (MB), open file descriptors and threads of one process; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 2), "fds": fds,
            "threads": int(fields["Threads"].strip())}


def descendants(root: int) -> list[int]:
    """`root` and every process below it (Kamailio's main process and the children it forked)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def summed(pids: list[int]) -> dict[str, float] | None:
    samples = [s for s in (proc_sample(p) for p in pids) if s]
    if not samples:
        return None
    return {m: round(sum(s[m] for s in samples), 2) for m in MEASURES} | {"processes": len(samples)}


class Sampler(threading.Thread):
    """A sample of every process of the service each `interval` seconds, until stopped."""

    def __init__(self, svc: ServeProcess, interval: float) -> None:
        super().__init__(daemon=True)
        self.svc, self.interval = svc, interval
        self.samples: list[dict] = []
        self.worker_pids: dict[str, set[int]] = {}
        self.stop_flag = threading.Event()
        self.t0 = time.monotonic()
        self.load_started = 0.0

    def run(self) -> None:
        while True:
            self.samples.append(self.take())
            if self.stop_flag.wait(self.interval):
                return

    def take(self) -> dict:
        kids = self.svc.children()
        kam = kids.pop("kamailio", None)
        workers = {}
        for name, pid in sorted(kids.items()):
            self.worker_pids.setdefault(name, set()).add(pid)
            sample = proc_sample(pid)
            if sample:
                workers[name] = sample | {"pid": pid}
        mean = ({m: round(statistics.mean(w[m] for w in workers.values()), 2) for m in MEASURES}
                if workers else None)
        out = {"t": round(time.monotonic() - self.t0, 1), "controller": proc_sample(self.svc.proc.pid),
               "kamailio": summed(descendants(kam)) if kam else None, "workers": mean, "worker": workers}
        if out["kamailio"] is not None:
            try:  # the edge's shared memory in use (transactions, dialogs): where its leaks would be
                used = int(self.svc.kamailio_rpc("core.shmmem")["real_used"])
                out["kamailio"]["shm_used_mb"] = round(used / 2**20, 2)
            except (OSError, ValueError, KeyError, TypeError):
                pass
        try:
            metrics = self.svc.metrics()
            out["free_call_slots"] = metrics.get('callrouter_media_call_slots{state="free"}')
        except OSError:
            pass
        return out

    def restarts(self) -> int:
        return sum(len(pids) - 1 for pids in self.worker_pids.values())


def growth(samples: list[dict], kind: str, measure: str, window: tuple[float, float]) -> dict:
    """Mean of the last tenth of the samples in `window` (after the warm-up, while calls still
    arrive) against the mean of their first tenth."""
    points = [(s["t"], s[kind][measure]) for s in samples
              if window[0] <= s["t"] <= window[1] and s.get(kind) and measure in s[kind]]
    values = [v for _, v in points]
    k = max(MIN_TENTH, len(values) // 10)
    if len(values) < 2 * k:
        return {"samples": len(values), "verdict": "too few samples", "flat": False}
    first, last = statistics.mean(values[:k]), statistics.mean(values[-k:])
    ratio = (last - first) / first if first else 0.0
    return {"samples": len(values), "tenth": k, "first_tenth_mean": round(first, 2), "last_tenth_mean": round(last, 2),
            "min": min(values), "max": max(values), "growth_pct": round(100 * ratio, 2),
            "flat": ratio <= TOLERANCE, "verdict": "flat" if ratio <= TOLERANCE else "grows",
            "steps": steps(points)}


def steps(points: list[tuple[float, float]], most: int = 12) -> list[list[float]] | str:
    """[t, value] where a measure that moves by whole steps (threads, descriptors) changed; "many"
    when it moves all the time (as RSS does)."""
    out = [[t, v] for (_, before), (t, v) in zip(points, points[1:]) if v != before]
    return out if len(out) <= most else "many"


def config(tmp: Path, phones_port: int, workers: int) -> dict:
    (tmp / "dialplans").mkdir()
    for name, number, route in (("menu", MENU, "{ivr: triage}"), ("bridge", BRIDGE, "{queue: general}")):
        (tmp / "dialplans" / f"{name}.yaml").write_text(PRACTICE.format(name=name, number=number, route=route))
    secretaries = {"bridge/general": [f"sip:s{i}@127.0.0.1:{phones_port}" for i in range(SECRETARIES)]}
    cfg = base_config(tmp, tmp / "dialplans", REPO / "prompts", workers=workers, agents=secretaries,
                      sip=edge_config(tmp))
    cfg["media"].update(legs_wanted=workers * 4, workers_min=workers, workers_max=workers, rtp_ports_per_worker=16,
                        spare_calls=2)
    cfg["sip"]["worker_max_calls"] = 4
    cfg["controller"]["ring_timeout_s"] = 20.0
    return cfg


def soak(args: argparse.Namespace) -> dict:
    subprocess.run([CLI, "prompts", "build"], cwd=REPO, check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        phones = sl.start_phones(tmp, "phones", 1000)
        svc = ServeProcess(tmp, config(tmp, phones.port, args.workers))
        sampler: Sampler | None = None
        try:
            svc.start()
            svc.wait_edge_ready(args.workers, timeout=180)
            edge = svc.config["sip"]["udp_port"]
            sampler = Sampler(svc, args.interval)
            sampler.start()
            time.sleep(args.interval)  # a sample of the idle service first
            burst = warmup_burst(tmp, edge, args)
            sampler.load_started = time.monotonic() - sampler.t0
            loads = run_load(tmp, edge, args)
            loads["warmup_burst"] = burst
            time.sleep(args.interval)
            records = call_records(tmp / "callrouter.db")
        finally:
            if sampler is not None:
                sampler.stop_flag.set()
                sampler.join(timeout=30)
            stray = svc.stop(timeout=120)
            phones.stop()
            if os.environ.get("SOAK_LOG"):  # the service's log, to read after a surprising run
                Path(os.environ["SOAK_LOG"]).write_text(svc.log_text())
            log = svc.log_text()
    return report(args, sampler, loads, records, stray, log)


def call_records(db: Path, timeout: float = 60.0) -> dict[str, dict[str, int]]:
    """Per practice, the calls the service recorded by outcome ("open": not closed yet), once
    every call is closed or after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            rows = conn.execute("SELECT practice, COALESCE(outcome, 'open'), COUNT(*), "
                                "SUM(answered_at IS NOT NULL) FROM calls GROUP BY 1, 2").fetchall()
        out: dict[str, dict[str, int]] = {}
        for practice, outcome, count, answered in rows:
            out.setdefault(practice, {})[outcome] = count
            out[practice]["answered_by_a_secretary"] = out[practice].get("answered_by_a_secretary", 0) + answered
        if not any("open" in by for by in out.values()) or time.monotonic() > deadline:
            return out
        time.sleep(1.0)


def warmup_burst(tmp: Path, edge: int, args: argparse.Namespace) -> sl.Load:
    """Calls at once into the menu before the steady load, part of the warm-up: the pools that grow
    on demand and stay (the controller's thread pool, the edge's memory) reach their working size."""
    scenario = sl.menu_caller(tmp, "soak_burst", 3000, audio=True)
    return sl.run_callers(tmp, scenario, edge, args.burst_rate, args.burst, MENU)


def run_load(tmp: Path, edge: int, args: argparse.Namespace) -> dict[str, sl.Load]:
    """Both callers at their steady rates for the whole duration, in parallel; blocks until done."""
    hold = int(args.hold * 1000)
    plans = {"menu": (sl.menu_caller(tmp, "soak_menu", hold, audio=True), MENU, args.menu_rate),
             "bridged": (sl.menu_caller(tmp, "soak_bridged", hold, audio=True), BRIDGE, args.bridged_rate)}
    out: dict[str, sl.Load] = {}
    threads = []
    for name, (scenario, number, rate) in plans.items():
        calls = max(1, int(rate * args.duration))
        def run(name=name, scenario=scenario, number=number, rate=rate, calls=calls) -> None:
            out[name] = sl.run_callers(tmp, scenario, edge, rate, calls, number)  # traced: failure codes

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(timeout=args.duration + args.hold + 600)
    for name, (_, _, rate) in plans.items():
        out.setdefault(name, sl.Load(calls=max(1, int(rate * args.duration)), rate=rate, successful=0,
                                     failed=max(1, int(rate * args.duration)), wall_s=0.0))
    return out


def report(args: argparse.Namespace, sampler: Sampler | None, loads: dict, records: dict, stray: list,
           log: str) -> dict:
    samples = sampler.samples if sampler else []
    begun = sampler.load_started if sampler else 0.0
    window = (begun + args.warmup, begun + args.duration)
    verdicts = {kind: {m: growth(samples, kind, m, window) for m in MEASURES} for kind in KINDS}
    verdicts["kamailio"]["shm_used_mb"] = growth(samples, "kamailio", "shm_used_mb", window)
    per_worker = {}
    for name in sorted({n for s in samples for n in s["worker"]}):
        rows = [{"t": s["t"], "w": s["worker"][name]} for s in samples if name in s["worker"]]
        per_worker[name] = {m: growth(rows, "w", m, window).get("growth_pct") for m in MEASURES}
    calls = {name: load.summary() for name, load in loads.items()}
    calls["records"] = records  # per practice: outcomes as the service recorded them
    calls["bridged"]["answered_by_a_secretary"] = records.get("bridge", {}).get("answered_by_a_secretary", 0)
    # SIPp's failed calls, and the calls the service itself saw fail or never closed
    failed = sum(load.failed for load in loads.values()) + sum(
        by.get("failed", 0) + by.get("open", 0) for by in records.values())
    restarts = sampler.restarts() if sampler else 0
    free = [s["free_call_slots"] for s in samples if s.get("free_call_slots") is not None]
    leaked = int(free[0] - free[-1]) if free else -1  # the first sample is before any call, the last after
    grown = [f"{kind}.{m}" for kind, by in verdicts.items() for m, v in by.items() if not v["flat"]]
    problems = grown + [name for name, bad in (("failed calls", failed), ("worker restarts", restarts),
                                                ("call slots leaked", leaked), ("stray processes", stray)) if bad]
    ok = not problems
    result = {
        "short_run": args.duration < FULL_DURATION_S,
        "note": (f"a short run ({args.duration} s against the {FULL_DURATION_S} s of `make soak`)"
                 if args.duration < FULL_DURATION_S else "a full-length run"),
        "parameters": {"duration_s": args.duration, "warmup_s": args.warmup, "interval_s": args.interval,
                       "menu_calls_per_s": args.menu_rate, "bridged_calls_per_s": args.bridged_rate,
                       "hold_s": args.hold, "workers": args.workers, "warmup_burst_calls": args.burst,
                       "warmup_burst_calls_per_s": args.burst_rate, "secretaries": SECRETARIES,
                       "tolerance_pct": 100 * TOLERANCE,
                       "trend": "mean of the last tenth of the samples after warm-up against the mean of their "
                                "first tenth (at least 3 samples each), per process kind, while calls still arrive; "
                                "workers: mean per worker, Kamailio: sum over its processes; a sample's t counts from "
                                "the first sample, the load starting at trend_window_s[0] - warmup_s"},
        "passed": ok,
        "grown": grown,
        "problems": problems,
        "calls": calls,
        "calls_failed": failed,
        "worker_restarts": restarts,
        "call_slots_leaked": leaked,
        "stray_processes": stray,
        "tracebacks_in_log": log.count("Traceback"),
        "trend_window_s": [round(t, 1) for t in window],
        "verdicts": verdicts,
        "per_worker_growth_pct": per_worker,
        "samples": samples,
    }
    last = {kind: verdicts[kind] for kind in KINDS}
    result["summary"] = [
        result["note"],
        f"calls: {calls['menu']['successful']}/{calls['menu']['calls']} into the menu, "
        f"{calls['bridged']['successful']}/{calls['bridged']['calls']} bridged to secretaries "
        f"({calls['bridged']['answered_by_a_secretary']} answered by one), {failed} failed",
        *(f"{kind}: " + ", ".join(f"{m} {v.get('first_tenth_mean')} -> {v.get('last_tenth_mean')} "
                                  f"({v.get('growth_pct')}%)" for m, v in by.items()) for kind, by in last.items()),
        f"{len(samples)} samples, {restarts} worker restarts, {leaked} call slots leaked, verdict: "
        + ("flat within 5%, 0 failed calls" if ok else f"FAILED ({', '.join(problems)})"),
    ]
    return result


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=FULL_DURATION_S, help="seconds of steady load")
    p.add_argument("--warmup", type=float, help="seconds left out of the trend (default: a fifth, 60-300 s)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--menu-rate", type=float, default=0.5, help="calls per second into the menu")
    p.add_argument("--bridged-rate", type=float, default=0.25, help="calls per second bridged to secretaries")
    p.add_argument("--hold", type=float, default=12.0, help="seconds each call is held")
    p.add_argument("--workers", type=int, default=8,
                   help="media workers (a fixed pool; 4 slots each, and the pool keeps one free for the "
                        "secretary of each caller: a caller takes 2)")
    p.add_argument("--burst", type=int, default=10, help="calls of the warm-up burst into the menu")
    p.add_argument("--burst-rate", type=float, default=5.0, help="calls per second of the warm-up burst")
    p.add_argument("--out", type=Path, default=RESULT)
    args = p.parse_args(argv)
    if args.warmup is None:
        args.warmup = min(300.0, max(60.0, args.duration / 5))
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    started, load_before = time.time(), os.getloadavg()
    result = soak(args)
    result["_meta"] = {"ran_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                       "seconds": round(time.time() - started, 1), "python": platform.python_version(),
                       "machine": platform.machine(), "cpus": os.cpu_count(),
                       "load_average_1_5_15_min": {"before": [round(x, 2) for x in load_before],
                                                   "after": [round(x, 2) for x in os.getloadavg()]}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    for line in result["summary"]:
        print(line)
    print(f"written to {args.out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
