"""Where an active call's CPU goes in a media worker: `python -m bench.worker_profile`.

One worker (driven over its RPC, no controller), 0 then 1, 2 and 4 SIPp callers, each answered
and played the menu prompt in a loop while SIPp sends it RTP (a capture, looped): the worker's CPU
at each step (per thread, from /proc/<pid>/task/*/schedstat, in ns) gives the cost of one call.
With four calls up, py-spy samples the Python threads (our loop) and perf every thread (pjmedia's
conference clock thread is not a Python thread); the heaviest frames are written, by share of the
samples, to bench/results/worker_profile.json. Needs py-spy (`pip install py-spy`) and perf.
"""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import sipp_load as sl
from bench.procstat import cpu_ticks, HZ
from callrouter.media import protocol as p

REPO = Path(__file__).resolve().parent.parent
PROMPT = REPO / "prompts" / "build" / "triage_menu.wav"
STEP_S = 15.0


def main() -> int:
    import os

    sys.path.insert(0, str(REPO))
    import tests.media.harness as harness
    from tests.media.harness import WorkerProc

    # BENCH_WORKER_TREE: run the worker of another checkout (the code before a change) the same way.
    tree = os.environ.get("BENCH_WORKER_TREE")
    if tree:
        harness.REPO = Path(tree)

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    worker = WorkerProc(name="prof")
    out: dict = {"prompt": str(PROMPT.relative_to(REPO)), "steps": []}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        runs, legs = [], []
        try:
            out["steps"].append(step(worker, 0))
            for calls in (1, 2, 4):
                while len(legs) < calls:
                    scenario = sl.menu_caller(tmp, f"c{len(legs)}", 120000, audio=True)
                    runs.append(subprocess.Popen(
                        ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(sl.free_udp_port()), "-m", "1",
                         "-s", "+33100000077", "-set", "caller", sl.CALLER,
                         "-set", "rtp_port", str(sl.free_udp_port(even=True)), "-mi", "127.0.0.1", "-mp",
                         str(sl.free_udp_port(even=True, span=4)), "-timeout", "180s", "-nostdin",
                         f"127.0.0.1:{worker.sip_port}"], cwd=tmp, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL))
                    call = worker.expect(p.IncomingCall)
                    worker.send(p.Answer(leg=call.leg))
                    worker.send(p.Play(leg=call.leg, path=str(PROMPT), loop=True))
                    worker.expect(p.LegState, leg=call.leg, state="confirmed")
                    legs.append(call.leg)
                time.sleep(1.0)
                out["steps"].append(step(worker, calls))
            out["profile"] = profile(py_spy, worker.proc.pid, tmp)
            out["native"] = native(worker.proc.pid, tmp)
        finally:
            for leg in legs:
                worker.send(p.Hangup(leg=leg))
            for run in runs:
                try:
                    run.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    run.kill()
            worker.stop()
    idle = out["steps"][0]["cpu_pct_of_core"]
    four = out["steps"][-1]["cpu_pct_of_core"]
    out["cpu_pct_per_active_call"] = round((four - idle) / 4, 3)
    out["worker_tree"] = tree or "this checkout"
    path = REPO / "bench" / "results" / ("worker_profile_before.json" if tree else "worker_profile.json")
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "profile"}, indent=1))
    for line in out["native"]["top_self"][:25]:
        print(f"  {line['share_pct']:5.1f}%  {line['symbol']}")
    print(f"written to {path.relative_to(REPO)}")
    return 0


def thread_ns(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            out[f"{name}-{task.name}"] = int((task / "schedstat").read_text().split()[0])
        except OSError:
            continue
    return out


def step(worker, calls: int) -> dict:
    pid = worker.proc.pid
    before, ticks = thread_ns(pid), cpu_ticks(pid)
    time.sleep(STEP_S)
    after, ticks = thread_ns(pid), cpu_ticks(pid) - ticks
    threads = {name: round(100.0 * (ns - before.get(name, 0)) / 1e9 / STEP_S, 3) for name, ns in after.items()}
    return {"calls": calls, "cpu_pct_of_core": round(sum(threads.values()), 3), "threads_pct_of_core": threads,
            "cpu_pct_of_core_from_ticks": round(100.0 * ticks / HZ / STEP_S, 2)}


def profile(py_spy: str, pid: int, tmp: Path, seconds: int = 15) -> dict:
    """py-spy with native frames; each sample's stack counted once per frame it holds (self time
    for the innermost frame)."""
    raw = tmp / "worker.txt"
    subprocess.run([py_spy, "record", "--native", "--idle", "--threads", "--rate", "250", "--duration", str(seconds),
                    "--format", "raw", "--output", str(raw), "--pid", str(pid)],
                   check=True, capture_output=True, timeout=seconds + 60)
    inclusive: collections.Counter[str] = collections.Counter()
    selfs: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        threads[frames[0]] += n
        for frame in set(frames[1:]):
            inclusive[_short(frame)] += n
        selfs[_short(frames[-1])] += n
    share = lambda c: round(100.0 * c / max(1, total), 1)  # noqa: E731
    return {"samples": total,
            "threads": [{"thread": t, "share_pct": share(c)} for t, c in threads.most_common()],
            "top_frames": [{"frame": f, "share_pct": share(c)} for f, c in inclusive.most_common(40)],
            "top_self": [{"frame": f, "share_pct": share(c)} for f, c in selfs.most_common(25)]}


def native(pid: int, tmp: Path, seconds: int = 15) -> dict:
    """perf over every thread of the worker: self time by thread and by symbol."""
    data = tmp / "perf.data"
    subprocess.run(["perf", "record", "-F", "997", "-g", "-p", str(pid), "-o", str(data), "--", "sleep", str(seconds)],
                   check=True, capture_output=True, timeout=seconds + 60)
    report = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none",
                             "--sort", "comm,dso,symbol", "--percent-limit", "0.5"],
                            check=True, capture_output=True, text=True, timeout=120).stdout
    rows = []
    for line in report.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0].endswith("%"):
            rows.append({"share_pct": float(parts[0].rstrip("%")), "thread": parts[1],
                         "symbol": f"{' '.join(parts[4:])} ({parts[2]})"})
    by_thread: collections.Counter[str] = collections.Counter()
    for row in rows:
        by_thread[row["thread"]] += row["share_pct"]
    return {"threads": dict(by_thread.most_common()), "top_self": rows[:40]}


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    if "/site-packages/" in where:
        where = where.split("/site-packages/", 1)[1]
    elif "/callrouter/" in where:
        where = "callrouter/" + where.split("/callrouter/", 1)[1]
    return f"{name} ({where})" if where else name


if __name__ == "__main__":
    sys.exit(main())
