"""Memory and CPU of the processes the controller starts (each media worker, the edge), read from
/proc when Prometheus scrapes: they are what runs out first.

`callrouter_child_memory_bytes{process}` and `callrouter_child_cpu_seconds_total{process}`,
`process` being a worker's name (w0, w1...) or `kamailio`. The edge is a process group (its main
process and the children it forks, sharing one memory segment): its figures are the sums over the
group. Memory is the proportional set size (a page shared by n processes counts 1/n in each), so
the edge's sum is what the group really holds; the resident size where the kernel gives no PSS.
The controller's own are the standard `process_*` series.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def usage(pid: int, proc: Path = PROC) -> tuple[int, float] | None:
    """(memory bytes, CPU seconds user + system) of one process, None when it is gone."""
    base = proc / str(pid)
    try:
        stat = (base / "stat").read_text()
        memory = _pss(base) or int((base / "statm").read_text().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None
    fields = stat.rsplit(") ", 1)[1].split()  # after the command name, which may hold spaces
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15 of stat)
    return memory, cpu


def _pss(base: Path) -> int | None:
    try:
        text = (base / "smaps_rollup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return None


def group_members(pgid: int, proc: Path = PROC) -> list[int]:
    """Every process of process group `pgid`."""
    out = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            out.append(int(entry.name))
    return out


class ChildResources(Collector):
    """`processes()`: name -> the pids to sum (a worker: its pid; the edge: its group's)."""

    def __init__(self, processes: Callable[[], Mapping[str, Iterable[int]]], proc: Path = PROC) -> None:
        self._processes, self._proc = processes, proc

    def collect(self):
        memory = GaugeMetricFamily("callrouter_child_memory_bytes", "Memory (proportional set size) of a "
                                   "media worker or of the edge's processes", labels=["process"])
        cpu = CounterMetricFamily("callrouter_child_cpu_seconds", "CPU time (user and system) of a media "
                                  "worker or of the edge's processes", labels=["process"])
        for name, pids in sorted(self._processes().items()):
            found = [u for u in (usage(pid, self._proc) for pid in pids) if u is not None]
            if found:
                memory.add_metric([name], sum(u[0] for u in found))
                cpu.add_metric([name], sum(u[1] for u in found))
        yield memory
        yield cpu

    def describe(self):
        return []
