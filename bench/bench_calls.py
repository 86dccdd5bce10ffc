"""Calls through the whole service beside the relay floor of this machine, in one run.

The floor is a SIPp caller through a plain Kamailio relay to a SIPp phone that answers at once
(bench/floor.py); the same caller then goes through callrouter's edge, its media workers and its
controller into a practice's menu. Both are measured the same way (INVITE-to-200 from SIPp's
message trace, to the microsecond) at 20, 50, 100 and 200 calls/s, then the service holds calls in
the menu and the queue, then calls bridged to secretaries (SIPp phones echoing RTP) with audio
checked both ways. CPU and memory are read from /proc.

`BENCH_SCALE=short` runs every phase small and short (a few minutes in all); the default is the
full run whose targets are written in the result. Every SIPp run is bounded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench import sipp_load as sl
from bench.floor import RelayFloor
from bench.procstat import Usage, context_switches, group_of, legs_of, rss_mb
from bench.rtp_check import EchoCheck
from callrouter.devtools.serve import CLI, ServeProcess, base_config, edge_config
from callrouter.media.settings import MediaSettings

REPO = Path(__file__).resolve().parent.parent
MENU, WAIT, BRIDGE = "+33100000077", "+33100000079", "+33100000078"
SECRETARIES = 100
WORKERS_MAX = 250  # an idle worker costs no CPU and about 30 MB: the pool's ceiling, not its size
IDLE_RETIRE_S = 300.0  # as in production: a pool grown by a phase stays for the next ones
# media.shed_lag_ms: off as by default; BENCH_SHED_MS=250 makes the edge refuse new calls while the
# controller lags 250 ms (docs/media.md, "Overload")
SHED_LAG_MS = 0

FULL = dict(rates=(20, 50, 100), rate_seconds=20, burst_rate=200, burst_seconds=60, held=250, held_seconds=60,
            bridged=100, bridged_seconds=60, idle_seconds=20)
SHORT = dict(rates=(20, 50, 100), rate_seconds=5, burst_rate=100, burst_seconds=10, held=60, held_seconds=20,
             bridged=20, bridged_seconds=20, idle_seconds=10)

TARGETS = {
    "p50_within_2x_floor_at_100cps": "INVITE-to-200 p50 at 100 calls/s within twice the relay floor's",
    "p99_under_10ms_at_100cps": "INVITE-to-200 p99 under 10 ms at 100 calls/s",
    "burst_zero_failures": "200 calls/s for 60 s with 0 failed calls",
    "held_zero_failures": "250 calls held in the menu and the queue together for 60 s, RTP from every caller, 0 failures",
    "bridged_audio_both_ways": "100 calls bridged to SIPp secretaries held 60 s, audio both ways on each, 0 failures",
}

PRACTICE = """\
practice: {name}
name: Cabinet {name}
timezone: Europe/Paris
numbers: ["{number}"]
hours:
  daily: ["00:00-24:00"]
queues:
  general: {{label: Secrétariat, wrap_up: 0s}}
ivr:
  triage:
    prompt: triage_menu
    timeout: 60s
    retries: 0
    options:
      "3": {{reason: rendez-vous, queue: general}}
routes:
  open: {route}
  closed: {route}
  holiday: {route}
  overflow: {{wait_max: 600s, queue_max: 1000, then: {{voicemail: true}}}}
"""


def scale() -> dict:
    return SHORT if os.environ.get("BENCH_SCALE") == "short" else FULL


def media_settings(workers: int) -> dict:
    """The pool for this run: a fixed size with the pool of old, otherwise the elastic pool with a
    floor of spare call capacity ahead of the bursts (`BENCH_WORKERS` overrides the fixed size)."""
    fields = {f.name for f in dataclasses.fields(MediaSettings)}
    if "spare_calls" not in fields or os.environ.get("BENCH_FIXED"):
        return {"legs_wanted": workers * 4, "workers_min": workers, "workers_max": workers}
    out = {"legs_wanted": 8, "workers_min": 2, "workers_max": WORKERS_MAX, "arrival_lead_seconds": 0.5,
           "spare_calls": int(os.environ.get("BENCH_SPARE", "100")), "idle_retire_seconds": IDLE_RETIRE_S}
    if "shed_lag_ms" in fields:  # new calls refused at the edge while the controller lags (BENCH_SHED_MS=0: never)
        out["shed_lag_ms"] = int(os.environ.get("BENCH_SHED_MS", str(SHED_LAG_MS)))
    return out


def config(tmp: Path, phones_port: int) -> dict:
    (tmp / "dialplans").mkdir()
    for name, number, route in (("menu", MENU, "{ivr: triage}"), ("wait", WAIT, "{queue: general}"),
                                ("bridge", BRIDGE, "{queue: general}")):
        (tmp / "dialplans" / f"{name}.yaml").write_text(PRACTICE.format(name=name, number=number, route=route))
    secretaries = {"wait/general": [f"sip:busy@127.0.0.1:{phones_port}"],
                   "bridge/general": [f"sip:s{i}@127.0.0.1:{phones_port}" for i in range(SECRETARIES)]}
    workers = int(os.environ.get("BENCH_WORKERS", "120"))
    cfg = base_config(tmp, tmp / "dialplans", REPO / "prompts", workers=max(workers, WORKERS_MAX),
                      agents=secretaries, sip=edge_config(tmp))
    cfg["media"].update(media_settings(workers), rtp_ports_per_worker=16)
    cfg["sip"]["worker_max_calls"] = int(os.environ.get("BENCH_MAXLOAD", "4" if "spare_calls" in
                                                        {f.name for f in dataclasses.fields(MediaSettings)} else "2"))
    cfg["sip"]["shm_mb"] = 128  # 200 calls/s: transactions, dialogs and the dispatcher's call load
    cfg["controller"]["ring_timeout_s"] = 20.0
    return cfg


class Sampler(threading.Thread):
    """The pool's size every second, read from the service's metrics."""

    def __init__(self, svc: ServeProcess) -> None:
        super().__init__(daemon=True)
        self.svc, self.stop_flag, self.workers, self.free = svc, threading.Event(), [], []

    def run(self) -> None:
        while not self.stop_flag.wait(1.0):
            try:
                m = self.svc.metrics()
            except OSError:
                continue
            self.workers.append(m.get("callrouter_media_workers", 0))
            self.free.append(m.get('callrouter_media_call_slots{state="free"}', 0))


def run() -> dict:
    s = scale()
    subprocess.run([CLI, "prompts", "build"], cwd=REPO, check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        phones = sl.start_phones(tmp, "phones", 2000)
        floor = RelayFloor(tmp, phones.port).start()
        svc = ServeProcess(tmp, config(tmp, phones.port))
        sampler = None
        try:
            svc.start()
            svc.wait_edge_ready(svc.config["media"]["workers_min"], timeout=180)
            sampler = Sampler(svc)
            sampler.start()
            result = phases(tmp, s, svc, floor, phones)
            result["pool"] = {"workers_peak": max(sampler.workers, default=0),
                              "workers_at_end": sampler.workers[-1] if sampler.workers else None,
                              "workers_max_reached_log_lines": svc.log_text().count("workers_max"),
                              "shed_episodes": svc.log_text().count("behind its calls: new calls are refused")}
            result["call_records_written"] = len(svc.calls())
        finally:
            if sampler is not None:
                sampler.stop_flag.set()
            stray = svc.stop(timeout=120)
            floor.stop()
            phones.stop()
            if os.environ.get("BENCH_LOG"):  # the service's log, to read after a surprising run
                Path(os.environ["BENCH_LOG"]).write_text(svc.log_text())
    result["stray_processes"] = stray
    result["sip_worker_max_calls"] = svc.config["sip"]["worker_max_calls"]
    result["media"] = svc.config["media"]
    return finish(result, s)


def groups_of(svc: ServeProcess, floor: RelayFloor):
    def groups() -> dict[str, list[int]]:
        kids = svc.children()
        kam = kids.pop("kamailio", None)
        return {"workers": list(kids.values()), "controller": [svc.proc.pid],
                "kamailio": group_of(kam) if kam else [], "floor_relay": floor.pids()}
    return groups


def phases(tmp: Path, s: dict, svc: ServeProcess, floor: RelayFloor, phones: sl.Phones) -> dict:
    edge = svc.config["sip"]["udp_port"]
    usage = Usage(groups_of(svc, floor), controller=svc.proc.pid)
    out: dict = {"scale": "short" if s is SHORT else "full"}
    time.sleep(5)
    workers = list(svc.worker_pids().values())
    switches = sum(context_switches(p) for p in workers)
    idle = usage.measure(lambda: time.sleep(s["idle_seconds"]), s["idle_seconds"])
    switches = sum(context_switches(p) for p in workers) - switches
    rss = [rss_mb(p) for p in workers]
    out["idle"] = {"workers": len(workers), "cpu_pct_of_core": idle,
                   "worker_cpu_pct_each": round(idle["workers"] / max(1, len(workers)), 4),
                   "worker_wakeups_per_s_each": round(switches / max(1, len(workers)) / s["idle_seconds"], 2),
                   "worker_rss_mb_mean": round(statistics.mean(rss), 1) if rss else None}
    # The calls held first, on the pool its floor asks for: the workers they add are the workers they
    # need (a caller in the menu or the queue takes one slot).
    for name, phase in (("held", held), ("bridged", bridged)):
        try:
            out[name] = phase(tmp, s, svc, usage, edge, idle)
        except Exception as exc:  # one phase's failure is written down; the others' figures are kept
            out[name] = {"error": repr(exc), "calls": 0, "failed": -1}
        time.sleep(3)
    menu = sl.menu_caller(tmp, "menu", 2000)
    out["latency"] = {}
    for rate in (*s["rates"], s["burst_rate"]):
        seconds = s["burst_seconds"] if rate == s["burst_rate"] else s["rate_seconds"]
        calls = int(rate * seconds)
        base = sl.run_callers(tmp, menu, floor.port, rate, calls, MENU)
        cpu: dict = {}
        load: list = []
        cpu.update(usage.measure(lambda: load.append(sl.run_callers(tmp, menu, edge, rate, calls, MENU))))
        ours = load[0]
        ratio = None
        if base.latency()["p50"] and ours.latency()["p50"]:
            ratio = round(ours.latency()["p50"] / base.latency()["p50"], 2)
        out["latency"][str(rate)] = {"floor": base.summary(), "callrouter": ours.summary(),
                                     "p50_ratio_to_floor": ratio, "cpu_pct_of_core": cpu,
                                     # this machine may be running other work: its 1-min load average
                                     "load_average_1m": round(os.getloadavg()[0], 2)}
        time.sleep(3)
    return out


def _background(target, *args) -> tuple[threading.Thread, list]:
    box: list = []
    thread = threading.Thread(target=lambda: box.append(target(*args)), daemon=True)
    thread.start()
    return thread, box


def held(tmp: Path, s: dict, svc: ServeProcess, usage: Usage, edge: int, idle: dict) -> dict:
    """Half the callers stay in the menu, half wait in a queue whose one secretary is busy; every
    caller sends RTP (a capture, looped) the whole time."""
    n, hold = s["held"], s["held_seconds"] * 1000
    rate = max(1, n // 10)
    menu = sl.menu_caller(tmp, "held_menu", hold, audio=True)
    wait = sl.menu_caller(tmp, "held_wait", hold, audio=True)
    runs = [_background(sl.run_callers, tmp, menu, edge, rate / 2, n // 2, MENU, None, None, False),
            _background(sl.run_callers, tmp, wait, edge, rate / 2, n - n // 2, WAIT, None, None, False)]
    before = len(svc.worker_pids())
    time.sleep(12)
    window = max(5.0, s["held_seconds"] - 15)
    workers = list(svc.worker_pids().values())
    cpu = usage.measure(lambda: time.sleep(window), window)
    rss = sum(rss_mb(p) for p in workers)
    legs = [n for n in (legs_of(p) for p in workers) if n]
    for thread, _ in runs:
        thread.join(timeout=s["held_seconds"] + 300)
    loads = [box[0] for _, box in runs if box]
    ok = sum(load.successful for load in loads)
    failed = n - ok
    per_call = {g: round((cpu[g] - idle.get(g, 0.0)) / n, 4)
                for g in ("workers", "controller", "kamailio")}
    return {"calls": n, "successful": ok, "failed": failed, "cpu_pct_of_core": cpu,
            "cpu_pct_per_active_call": per_call, "workers_before": before, "workers_during": len(workers),
            "calls_per_worker_added": round(n / max(1, len(workers) - before), 2),
            "workers_holding_calls": len(legs), "legs_per_busy_worker": {
                "mean": round(statistics.mean(legs), 2) if legs else None, "max": max(legs, default=0),
                "with_4": sum(1 for n in legs if n >= 4)},
            "worker_rss_mb_total": round(rss, 1),
            "rss_mb_per_call_slot": round(rss / max(1, len(workers) * 4), 2)}


def bridged(tmp: Path, s: dict, svc: ServeProcess, usage: Usage, edge: int, idle: dict) -> dict:
    n, hold = s["bridged"], s["bridged_seconds"] * 1000
    echo = EchoCheck().start()
    try:
        callers = sl.menu_caller(tmp, "bridged", hold)
        run, box = _background(sl.run_callers, tmp, callers, edge, max(1, n // 10), n, BRIDGE, echo.port, None,
                               False)
        time.sleep(12)
        window = max(5.0, s["bridged_seconds"] - 15)
        cpu = usage.measure(lambda: time.sleep(window), window)
        run.join(timeout=s["bridged_seconds"] + 300)
        legs = echo.snapshot()
    finally:
        echo.stop()
    load = box[0] if box else None
    expected = (hold / 1000 - 12) * 50  # packets each way once every call is bridged
    both_ways = sum(1 for _, echoed in legs.values() if echoed >= expected * 0.5)
    per_call = {g: round((cpu[g] - idle.get(g, 0.0)) / n, 4)
                for g in ("workers", "controller", "kamailio")}
    return {"calls": n, "successful": load.successful if load else 0, "failed": load.failed if load else n,
            "legs_heard": len(legs), "legs_with_audio_both_ways": both_ways,
            "echoed_packets_min": min((e for _, e in legs.values()), default=0),
            "cpu_pct_of_core": cpu, "cpu_pct_per_bridged_call": per_call}


def compared(result: dict, s: dict) -> list[str]:
    """The same figures from the run of the code before this media plane (same scale), when kept in
    bench/results/bench_calls_before_<scale>.json."""
    path = Path(__file__).parent / "results" / f"bench_calls_before_{result['scale']}.json"
    if not path.exists():
        return []
    before = json.loads(path.read_text())
    lines = [f"before ({before.get('_meta', {}).get('code', '?')}, {path.name}) -> now:"]
    for rate, entry in result["latency"].items():
        old = before.get("latency", {}).get(rate, {}).get("callrouter", {}).get("invite_to_200_ms")
        new = entry["callrouter"]["invite_to_200_ms"]
        if old:
            lines.append(f"  {rate} calls/s INVITE-to-200 p50 {old['p50']} -> {new['p50']} ms, "
                         f"p99 {old['p99']} -> {new['p99']} ms")
    bi, ai = before.get("idle", {}), result["idle"]
    lines.append(f"  idle worker {bi.get('worker_cpu_pct_each')} -> {ai['worker_cpu_pct_each']} % of a core, "
                 f"{bi.get('worker_wakeups_per_s_each')} -> {ai['worker_wakeups_per_s_each']} wake-ups/s")
    bh, ah = before.get("held", {}), result["held"]
    if bh.get("calls") and ah.get("calls"):
        maxload = before.get("sip_worker_max_calls", 2)
        lines.append(f"  held in menu and queue: {bh['calls']} calls on a fixed {bh.get('workers_during')} workers, "
                     f"{maxload} callers per worker at most -> {ah.get('calls_per_worker_added')} callers per worker "
                     f"added ({ah.get('workers_before')} -> {ah.get('workers_during')} workers for {ah['calls']})")
    return lines


def ms_per_call(entry: dict, group: str) -> float | None:
    """CPU of `group` per call that went through, in ms, from a latency phase's figures."""
    load = entry.get("callrouter", {})
    if not load.get("successful"):
        return None
    return round(entry.get("cpu_pct_of_core", {}).get(group, 0.0) * 10.0 * load["wall_s"] / load["successful"], 2)


def verdicts(result: dict, s: dict) -> dict[str, str]:
    """Why each target came out as it did, from the figures of the run."""
    lat = result["latency"]
    at100 = lat.get("100", {})
    c100, f100 = at100.get("callrouter", {}).get("invite_to_200_ms", {}), at100.get("floor", {}).get("invite_to_200_ms", {})
    cpu100 = at100.get("cpu_pct_of_core", {})
    burst = lat.get(str(s["burst_rate"]), {})
    cpub = burst.get("callrouter", {}) and burst.get("cpu_pct_of_core", {})
    return {
        "p50_within_2x_floor_at_100cps":
            f"p50 {c100.get('p50')} ms against the floor's {f100.get('p50')} ms: the floor is a SIPp phone behind a bare "
            f"relay; here the INVITE goes through the edge's checks (sanity, flood, dispatcher, dialog), a worker "
            f"(about 1 ms from the INVITE to its report, 1 ms from the answer command to the 200: the worker alone "
            f"is past twice the floor, {round(2 * (f100.get('p50') or 0), 3)} ms, so with a worker process and a "
            f"controller in the path the target cannot be met) and the controller's routing, records and events "
            f"between the two, one Python thread at {cpu100.get('controller')}% of a core at 100 calls/s "
            f"({ms_per_call(at100, 'controller')} ms of CPU per call) on this 2-core machine",
        "p99_under_10ms_at_100cps":
            f"p99 {c100.get('p99')} ms: the controller at {cpu100.get('controller')}% of a core, the workers at "
            f"{cpu100.get('workers')}% and the edge at {cpu100.get('kamailio')}% share two cores, and workers are "
            f"started during the run (about 0.07 s of CPU each)",
        "burst_zero_failures":
            (f"{burst.get('callrouter', {}).get('failed')} of {burst.get('callrouter', {}).get('calls')} failed "
             f"({burst.get('callrouter', {}).get('failure_codes')}): at {s['burst_rate']} calls/s the controller, one "
             f"Python thread, would need about twice its {cpu100.get('controller')}% of a core at 100 calls/s and got "
             f"{(cpub or {}).get('controller')}% (the workers {(cpub or {}).get('workers')}%, the edge "
             f"{(cpub or {}).get('kamailio')}%): the two cores saturate, answers come late, the edge gives up on the "
             f"workers (408, 503) and callers retransmit. "
             + (f"The edge refused new calls {result.get('pool', {}).get('shed_episodes')} time(s) while the controller "
                f"lagged {result['media'].get('shed_lag_ms')} ms or more (503 with Retry-After, counted above)"
                if result.get("media", {}).get("shed_lag_ms") else "New calls were never refused for the controller's lag")
             if s["burst_rate"] == 200 else f"the short run stops at {s['burst_rate']} calls/s"),
        "held_zero_failures": (f"{result['held'].get('failed')} failed of {result['held'].get('calls')}"
                               + (" (the short run holds fewer than the 250 of the target)"
                                  if result["held"].get("calls", 0) < 250 else "")),
        "bridged_audio_both_ways": (f"{result['bridged'].get('legs_with_audio_both_ways')} of "
                                    f"{result['bridged'].get('calls')} with audio both ways"
                                    + (" (the short run bridges fewer than the 100 of the target)"
                                       if result["bridged"].get("calls", 0) < 100 else "")),
    }


def finish(result: dict, s: dict) -> dict:
    lat = result["latency"]
    at100 = lat.get("100", {})
    burst = lat.get(str(s["burst_rate"]), {})
    ours100 = at100.get("callrouter", {}).get("invite_to_200_ms", {})
    met = {
        "p50_within_2x_floor_at_100cps": bool(at100.get("p50_ratio_to_floor")) and at100["p50_ratio_to_floor"] <= 2,
        "p99_under_10ms_at_100cps": ours100.get("p99") is not None and ours100["p99"] < 10,
        "burst_zero_failures": burst.get("callrouter", {}).get("failed", 1) == 0 and s["burst_rate"] == 200,
        "held_zero_failures": result["held"].get("failed") == 0 and result["held"].get("calls", 0) >= 250,
        "bridged_audio_both_ways": (result["bridged"].get("failed") == 0 and result["bridged"].get("calls", 0) >= 100
                                    and result["bridged"].get("legs_with_audio_both_ways", 0)
                                    >= result["bridged"]["calls"]),
    }
    result["targets"] = TARGETS
    result["met"] = met
    result["why_not_met"] = {name: why for name, why in verdicts(result, s).items() if not met[name]}
    summary = []
    for rate, entry in lat.items():
        f, c = entry["floor"]["invite_to_200_ms"], entry["callrouter"]["invite_to_200_ms"]
        summary.append(f"{rate} calls/s: floor p50 {f['p50']} ms p99 {f['p99']} ms; callrouter p50 {c['p50']} ms "
                       f"p99 {c['p99']} ms (x{entry['p50_ratio_to_floor']}), "
                       f"{entry['callrouter']['failed']} of {entry['callrouter']['calls']} failed; controller "
                       f"{ms_per_call(entry, 'controller')} ms of CPU per call; machine load average "
                       f"{entry.get('load_average_1m')} (2 cores: above 2, other work was running)")
    h, b, i = result["held"], result["bridged"], result["idle"]
    summary += [
        f"idle: {i['workers']} workers, {i['worker_cpu_pct_each']}% of a core and "
        f"{i['worker_wakeups_per_s_each']} wake-ups/s each, {i['worker_rss_mb_mean']} MB RSS",
        f"held: {h.get('successful')}/{h.get('calls')} ok in menu and queue on {h.get('workers_during')} workers; "
        f"per call {h.get('cpu_pct_per_active_call')} % of a core; {h.get('rss_mb_per_call_slot')} MB per call slot"
        + (f" ({h['error']})" if "error" in h else ""),
        f"bridged: {b.get('successful')}/{b.get('calls')} ok, {b.get('legs_with_audio_both_ways')} with audio both "
        f"ways; per call {b.get('cpu_pct_per_bridged_call')} % of a core" + (f" ({b['error']})" if "error" in b else ""),
        f"targets met: {sum(met.values())}/{len(met)} (not met: {', '.join(k for k, v in met.items() if not v) or 'none'})",
    ]
    summary += [f"not met, {name}: {why}" for name, why in result["why_not_met"].items()]
    summary += compared(result, s)
    result["summary"] = summary
    return result
