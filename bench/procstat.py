"""CPU and memory of the processes of a running service, read from /proc.

Workers come and go with the pool's size: the CPU of those that exited during a window is in the
controller's `cutime`/`cstime` (their parent reaped them), so a group's usage over a window is its
live members' ticks plus the growth of the controller's children time.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Callable

HZ = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1].split()
    except OSError:
        return None


def cpu_ticks(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0  # utime + stime


def children_ticks(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[13]) + int(fields[14]) if fields else 0  # cutime + cstime


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def context_switches(pid: int) -> int:
    """Voluntary and involuntary context switches of every thread of `pid` (its wake-ups)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def legs_of(pid: int) -> int:
    """A media worker's legs, from its sockets: its SIP socket and its waker, then an RTP and an
    RTCP socket per leg (and per relay end)."""
    try:
        sockets = sum(1 for fd in Path(f"/proc/{pid}/fd").iterdir() if os.readlink(fd).startswith("socket:"))
    except OSError:
        return 0
    return max(0, sockets - 2) // 2


def group_of(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out] or [pid]


class Usage:
    """% of one core used by named groups of processes over a window; groups are re-read at both
    ends (`groups()` is called twice), and the controller's reaped children are counted."""

    def __init__(self, groups: Callable[[], dict[str, list[int]]], controller: int | None = None) -> None:
        self._groups, self._controller = groups, controller

    def measure(self, run: Callable[[], None], seconds: float = 0.0) -> dict[str, float]:
        before = self._ticks()
        reaped = children_ticks(self._controller) if self._controller else 0
        t0 = time.monotonic()
        run()
        elapsed = max(time.monotonic() - t0, seconds, 1e-6)
        after = self._ticks()
        out = {}
        for name in after:
            delta = sum(t for p, t in after[name].items()) - sum(t for p, t in before.get(name, {}).items()
                                                                if p in after[name])
            out[name] = delta
        if self._controller and "workers" in out:
            # Workers reaped meanwhile: their whole life is in cutime, less what they had used before.
            gone = sum(t for p, t in before.get("workers", {}).items() if p not in after["workers"])
            out["workers"] += children_ticks(self._controller) - reaped - gone
        return {name: round(100.0 * ticks / HZ / elapsed, 2) for name, ticks in out.items()}

    def _ticks(self) -> dict[str, dict[int, int]]:
        return {name: {p: cpu_ticks(p) for p in pids} for name, pids in self._groups().items()}
