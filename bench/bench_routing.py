"""Routing decisions with 500 practices loaded, and `callrouter check` of 500 dialplans.

Targets: decide() p99 under 50 microseconds; check of 500 files under 2 seconds.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from callrouter.dialplan.loader import load_paths
from callrouter.domain.call import Call
from callrouter.domain.routing import Router
from callrouter.prompts import Catalogue

REPO = Path(__file__).resolve().parent.parent
PRACTICES = 500
DECISIONS = 200_000


def make_dialplans(root: Path) -> list[str]:
    """500 files derived from the three examples, each with its own id and numbers."""
    templates = sorted((REPO / "dialplans").glob("*.yaml"))
    numbers: list[str] = []
    for i in range(PRACTICES):
        src = templates[i % len(templates)].read_text(encoding="utf-8")
        text = src
        for line in src.splitlines():
            if line.startswith("practice:"):
                text = text.replace(line, f"practice: bench-{i:04d}")
        for j, old in enumerate(sorted(set(_numbers(src)))):
            new = f"+3319{i:04d}{j:03d}"
            text = text.replace(f'"{old}"', f'"{new}"')
            numbers.append(new)
        (root / f"bench-{i:04d}.yaml").write_text(text, encoding="utf-8")
    return numbers


def _numbers(text: str) -> list[str]:
    import re
    head = text.split("practitioners:")[0]  # practice and site numbers come before people
    return re.findall(r'"(\+[0-9]{9,15})"', head)


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        numbers = make_dialplans(root)
        t0 = time.perf_counter()
        result = load_paths([root], Catalogue.load())
        load_s = time.perf_counter() - t0
        assert not result.errors, result.errors[:3]
        cli = [str(Path(sys.executable).with_name("callrouter")), "check", str(root)]
        t0 = time.perf_counter()
        proc = subprocess.run(cli, capture_output=True, text=True)
        check_s = time.perf_counter() - t0
        assert proc.returncode == 0, proc.stderr[-2000:]

    router = Router(result.dialplans)
    rng = random.Random(42)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    calls = [(Call(rng.choice(numbers), None, tuple(rng.choice(["", "1", "2", "3", "4", "9", "31"]))),
              start + dt.timedelta(seconds=rng.randrange(2 * 365 * 86400))) for _ in range(DECISIONS)]
    for call, now in calls[:5000]:  # warm the holiday caches like a running daemon
        router.decide(call, now)
    latencies = []
    clock = time.perf_counter_ns
    t_all = time.perf_counter()
    for call, now in calls:
        t0 = clock()
        router.decide(call, now)
        latencies.append((clock() - t0) / 1000)
    elapsed = time.perf_counter() - t_all
    latencies.sort()
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    return {
        "practices": PRACTICES,
        "decisions": DECISIONS,
        "decide_us": {"p50": round(p50, 2), "p99": round(p99, 2), "max": round(latencies[-1], 1),
                      "mean": round(statistics.fmean(latencies), 2)},
        "decisions_per_second": round(DECISIONS / elapsed),
        "load_500_in_process_s": round(load_s, 3),
        "check_500_cli_s": round(check_s, 3),
        "targets": {"decide_p99_us": 50, "check_500_s": 2.0},
        "met": {"decide_p99": p99 < 50, "check_500": check_s < 2.0},
        "summary": [
            f"decide(): p50 {p50:.1f} us, p99 {p99:.1f} us with {PRACTICES} practices (target p99 < 50 us)",
            f"{DECISIONS / elapsed:,.0f} decisions/s on one core",
            f"callrouter check of {PRACTICES} dialplans: {check_s:.2f} s (target < 2 s), in-process load {load_s:.2f} s",
        ],
    }
