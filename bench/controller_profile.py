"""Where the controller's CPU goes per call: `python -m bench.controller_profile`.

The service as `bench_calls` runs it (edge, elastic pool, the menu practice), warmed up, then
calls into the menu at CONTROLLER_PROFILE_RATE calls/s (100 by default; 2 s calls, as the latency
phase of bench_calls): first without a profiler (the controller's CPU from /proc, per call and
INVITE-to-200), then the same load again while py-spy samples the controller (`--nonblocking`, so
the process is not paused). Each sample is put in one place of the call's path (PLACES, from the
innermost frame outwards: the first place that holds a frame of the stack); the shares give the
CPU per call of each place. Written to bench/results/controller_profile.json, or to
controller_profile_<label>.json with CONTROLLER_PROFILE_LABEL (e.g. `before`).
CONTROLLER_PROFILE_LAG=1 also reads the controller's lag (callrouter_controller_lag_seconds) every
half second during the measured run: the scrapes cost the controller about 1-2 ms of CPU per call
at 50 calls/s, so the CPU figures of such a run are not comparable with the others. With
BENCH_SHED_MS, the episodes and the calls the edge refused are counted (`shed`).
Needs py-spy (`pip install py-spy`).
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import sipp_load as sl
from bench.bench_calls import MENU, REPO, config
from bench.procstat import HZ, Usage, group_of
from callrouter.devtools.serve import CLI, ServeProcess

# (place, the substrings of a frame that put a sample there), innermost first: a sample is put in
# the first place that holds one of its frames, reading the stack from the innermost frame out.
PLACES = [
    ("logging (records, formatting, handlers)", ("logging/__init__.py", "logging/handlers.py", "callrouter/logs")),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("JSON-lines protocol to the workers", ("callrouter/media/protocol.py", "json/encoder.py", "json/decoder.py",
                                            "json/__init__.py")),
    ("call records (recorder, SQLAlchemy, SQLite)", ("callrouter/controller/recorder.py", "sqlalchemy/",
                                                     "callrouter/store/")),
    ("events (MQTT publishing, cards)", ("callrouter/events/", "paho/")),
    ("pool resize plans", ("callrouter/media/pool_resize.py", "callrouter/media/sizing.py")),
    ("media pool (pick, legs, relays)", ("callrouter/media/",)),
    ("routing (dialplan, decide)", ("callrouter/domain/", "callrouter/routing", "callrouter/dialplan")),
    ("edge (Kamailio RPC, dispatcher)", ("callrouter/sip/",)),
    ("call flow (controller)", ("callrouter/controller/",)),
    ("Twisted reactor and I/O", ("twisted/",)),
]
OTHER = "other"
# A sample whose innermost frame is one of these is a thread waiting (py-spy's --nonblocking mode
# counts some waits as activity): left out.
WAITS = ("Condition.wait (threading.py", "EpollSelector.select (selectors.py", "Event.wait (threading.py",
         "Thread.join (threading.py", "_wait_for_tstate_lock (threading.py", "sleep (", "Queue.get (queue.py")


def place_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for place, marks in PLACES:
            if any(mark in frame for mark in marks):
                return place
    return OTHER


def main() -> int:
    rate = float(os.environ.get("CONTROLLER_PROFILE_RATE", "100"))
    seconds = float(os.environ.get("CONTROLLER_PROFILE_SECONDS", "10"))
    label = os.environ.get("CONTROLLER_PROFILE_LABEL", "")
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    calls = int(rate * seconds)
    subprocess.run([CLI, "prompts", "build"], cwd=REPO, check=True, capture_output=True)
    out: dict = {"rate": rate, "calls": calls, "hold_ms": 2000}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        phones = sl.start_phones(tmp, "phones", 2000)
        svc = ServeProcess(tmp, config(tmp, phones.port))
        try:
            svc.start()
            svc.wait_edge_ready(svc.config["media"]["workers_min"], timeout=180)
            edge = svc.config["sip"]["udp_port"]
            menu = sl.menu_caller(tmp, "menu", 2000)
            pid = svc.proc.pid

            def groups() -> dict[str, list[int]]:
                kids = svc.children()
                kam = kids.pop("kamailio", None)
                return {"workers": list(kids.values()), "controller": [pid],
                        "kamailio": group_of(kam) if kam else []}

            usage = Usage(groups, controller=pid)
            # The pool at its floor first (bench_calls' latency phases run on the pool its earlier
            # phases grew): a run here measures calls, not workers starting.
            floor = 'callrouter_media_spare_calls{kind="floor"}'
            svc.wait_metric('callrouter_media_spare_calls{kind="available"}',
                            lambda v: v >= svc.metrics().get(floor, 0) > 0, timeout=300)
            out["warm_up"] = sl.run_callers(tmp, menu, edge, rate, calls, MENU).summary()
            time.sleep(3)
            box: list = []
            threads = thread_ticks(pid)
            before = svc.metrics()
            lags: list[float] = []
            watching = threading.Event()
            watcher = threading.Thread(target=watch_lag, args=(svc, lags, watching), daemon=True)
            if os.environ.get("CONTROLLER_PROFILE_LAG") == "1":  # each scrape costs the controller CPU
                watcher.start()
            cpu = usage.measure(lambda: box.append(sl.run_callers(tmp, menu, edge, rate, calls, MENU)))
            watching.set()
            if watcher.is_alive():
                watcher.join(timeout=10)
            threads = {name: ticks - threads.get(name, 0) for name, ticks in thread_ticks(pid).items()}
            after = svc.metrics()
            load = box[0]
            # CPU per call: the controller's CPU over the window, by the calls that went through (a
            # failed call costs it little: on a loaded machine some are refused at the edge).
            wall = max(load.wall_s, calls / rate)
            out["plain"] = {"load": load.summary(), "cpu_pct_of_core": cpu,
                            "controller_cpu_ms_per_call": round(cpu["controller"] * 10.0 * wall / max(1, load.successful), 2),
                            "load_average": os.getloadavg(),
                            # the controller's lag (callrouter_controller_lag_seconds, the most of each
                            # second, read every half second), and what shedding refused, if it is on
                            "controller_lag_ms": spread([1000.0 * lag for lag in lags]),
                            "shed": {"lag_ms": svc.config["media"].get("shed_lag_ms", 0),
                                     "episodes": delta(before, after, "callrouter_media_shed_episodes_total"),
                                     "calls_refused": delta(before, after, "callrouter_media_calls_shed_total")},
                            # the controller's CPU by thread (/proc/<pid>/task), ms per call that went through
                            "thread_cpu_ms_per_call": {name: round(1000.0 * t / HZ / max(1, load.successful), 2)
                                                       for name, t in sorted(threads.items(), key=lambda kv: -kv[1])
                                                       if t > 0}}
            if os.environ.get("CONTROLLER_PROFILE_SPY") == "0":  # the figures from /proc only
                return finish(out, label, rate)
            time.sleep(3)
            raw = tmp / "controller.txt"
            spy = subprocess.Popen([py_spy, "record", "--nonblocking", "--threads", "--rate", "150", "--duration",
                                    str(int(seconds + 4)), "--format", "raw", "--output", str(raw), "--pid", str(pid)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            done = threading.Event()
            loader = threading.Thread(target=lambda: (sl.run_callers(tmp, menu, edge, rate, calls, MENU, trace=False),
                                                      done.set()), daemon=True)
            loader.start()
            spy.wait(timeout=seconds + 120)
            loader.join(timeout=seconds + 300)
            out["profile"] = summarise(raw, out["plain"]["controller_cpu_ms_per_call"])
            if os.environ.get("CONTROLLER_PROFILE_RAW"):  # py-spy's stacks, to read again
                shutil.copy(raw, os.environ["CONTROLLER_PROFILE_RAW"])
        finally:
            if os.environ.get("CONTROLLER_PROFILE_LOG"):  # the service's log, to read after a surprising run
                Path(os.environ["CONTROLLER_PROFILE_LOG"]).write_text(svc.log_text())
            svc.stop(timeout=120)
            phones.stop()
    return finish(out, label, rate)


def finish(out: dict, label: str, rate: float) -> int:
    name = f"controller_profile_{label}.json" if label else "controller_profile.json"
    path = REPO / "bench" / "results" / name
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"controller: {out['plain']['controller_cpu_ms_per_call']} ms of CPU per call at {rate:g} calls/s, "
          f"INVITE-to-200 {out['plain']['load']['invite_to_200_ms']}, lag {out['plain']['controller_lag_ms']}, "
          f"shed {out['plain']['shed']}, load average {out['plain']['load_average']}")
    for row in out.get("profile", {}).get("places", []):
        print(f"  {row['share_pct']:5.1f} %  {row['ms_per_call']:5.2f} ms  {row['place']}")
    print(f"written to {path.relative_to(REPO)}")
    return 0


def watch_lag(svc: ServeProcess, lags: list[float], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        try:
            lags.append(svc.metrics().get("callrouter_controller_lag_seconds", 0.0))
        except OSError:
            pass


def spread(values: list[float]) -> dict:
    if not values:
        return {"samples": 0}
    ordered = sorted(values)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
    return {"p50": pick(0.5), "p90": pick(0.9), "max": round(ordered[-1], 1), "samples": len(ordered)}


def delta(before: dict, after: dict, name: str) -> int:
    return int(after.get(name, 0) - before.get(name, 0))


def thread_ticks(pid: int) -> dict[str, int]:
    """CPU ticks (user + system) of each thread of `pid`: the reactor's ("main") and the others by
    thread id (Python does not name its threads for the system)."""
    out: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out["main" if task.name == str(pid) else f"thread {task.name}"] = int(fields[11]) + int(fields[12])
    return out


def summarise(raw: Path, ms_per_call: float) -> dict:
    places: collections.Counter[str] = collections.Counter()
    main: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    selfs: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = waiting = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames[-1].startswith(WAITS):
            waiting += n
            continue
        total += n
        threads[frames[0]] += n
        place = place_of(frames[1:])
        places[place] += n
        if "MainThread" in frames[0]:
            main[place] += n
        for frame in set(frames[1:]):
            inclusive[_short(frame)] += n
        selfs[_short(frames[-1])] += n
    share = lambda c: round(100.0 * c / max(1, total), 1)  # noqa: E731
    return {"samples": total, "waiting_samples_left_out": waiting,
            "threads": [{"thread": t, "share_pct": share(c)} for t, c in threads.most_common(8)],
            "places": [{"place": p, "share_pct": share(c), "ms_per_call": round(ms_per_call * c / max(1, total), 2)}
                       for p, c in places.most_common()],
            "main_thread": [{"place": p, "share_pct": share(c)} for p, c in main.most_common()],
            "top_frames": [{"frame": f, "share_pct": share(c)} for f, c in inclusive.most_common(60)],
            "top_self": [{"frame": f, "share_pct": share(c)} for f, c in selfs.most_common(30)]}


def _short(frame: str) -> str:
    for marker in ("site-packages/", "/callrouter/", "/lib/python3"):
        at = frame.find(marker)
        if at >= 0:
            head = frame[:frame.find(" (")] if " (" in frame else frame
            return f"{head} ({frame[at + len(marker):].rstrip(')')})"
    return frame


if __name__ == "__main__":
    sys.exit(main())
