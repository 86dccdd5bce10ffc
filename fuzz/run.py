"""`make fuzz`: each target of fuzz/targets.py under atheris for `--seconds`, from its seed corpus.

    python -m fuzz.run [TARGET ...] [--seconds 60] [--out bench/results/fuzz.json]

A target runs in its own process (fuzz/engine.py), libFuzzer bounded by -max_total_time, each
input by -timeout (a hang is a finding) and the process by -rss_limit_mb. The inputs it finds
interesting go to a scratch corpus (var/fuzz/<target>/, beside the committed seeds of
fuzz/corpus/<target>/, which are only read); a crashing input to var/fuzz/crashes/<target>/. After
a crash the target is started again for the rest of its time, so one bug does not hide the next
(at most MAX_CRASHES per target). Results: per target the executions, libFuzzer's coverage
(`cov`: edges of callrouter's code reached; `ft`: features), the corpus, and each crash with its
input and exception. The exit status is 1 when something crashed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fuzz.targets import CORPUS, MAX_LEN, TARGETS

REPO = Path(__file__).resolve().parent.parent
SCRATCH = REPO / "var" / "fuzz"
RESULT = REPO / "bench" / "results" / "fuzz.json"
MAX_CRASHES = 5
INPUT_TIMEOUT_S = 10
RSS_LIMIT_MB = 2048

_STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)")
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")
_KINDS = (("Uncaught Python exception", "exception"), ("ERROR: libFuzzer: timeout", "timeout"),
          ("out-of-memory", "out-of-memory"), ("deadly signal", "signal"))


def one_run(target: str, seconds: int, corpus: Path, crashes: Path) -> dict:
    """libFuzzer once, until its time is up or it finds a crash; what its output says."""
    args = [sys.executable, "-m", "fuzz.engine", target, str(corpus), str(CORPUS / target),
            f"-max_total_time={seconds}", f"-max_len={MAX_LEN[target]}", f"-timeout={INPUT_TIMEOUT_S}",
            f"-rss_limit_mb={RSS_LIMIT_MB}", "-print_final_stats=1", f"-artifact_prefix={crashes}/"]
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, errors="replace",
                          timeout=seconds + INPUT_TIMEOUT_S * 3 + 120)
    return parse_output(proc.stderr + proc.stdout, proc.returncode)


def parse_output(text: str, returncode: int) -> dict:
    out: dict = {"returncode": returncode, "stats": {}}
    for line in text.splitlines():
        status = _STATUS.match(line)
        if status:
            out.update(execs=int(status.group(1)), cov=int(status.group(2)), ft=int(status.group(3)),
                       corpus_units=int(status.group(4)), corpus_size=status.group(5))
        stat = _STAT.match(line)
        if stat:
            out["stats"][stat.group(1)] = int(stat.group(2))
        artifact = _ARTIFACT.search(line)
        if artifact:
            out["artifact"] = artifact.group(1)
    kind = next((name for marker, name in _KINDS if marker in text), None)
    if kind or "artifact" in out:
        out["crash"] = {"kind": kind or "crash", "artifact": out.get("artifact"), "exception": exception_of(text)}
    return out


def exception_of(text: str) -> str:
    """The Python traceback libFuzzer's output holds after an uncaught exception (its last lines)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "Uncaught Python exception" in line), None)
    if start is None:
        return ""
    tail = []
    for line in lines[start + 1:]:
        if line.startswith("==") or line.startswith("MS:"):
            break
        tail.append(line)
    return "\n".join(tail[-12:])


def fuzz(target: str, seconds: int) -> dict:
    corpus, crashes = SCRATCH / target, SCRATCH / "crashes" / target
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    seeds = len(list((CORPUS / target).iterdir()))
    deadline = time.monotonic() + seconds
    runs, found = [], []
    while True:
        left = int(deadline - time.monotonic())
        if left < 1 or len(found) >= MAX_CRASHES:
            break
        run = one_run(target, left, corpus, crashes)
        runs.append(run)
        if "crash" not in run:
            break
        found.append(run["crash"])
        print(f"   {target}: {run['crash']['kind']} {run['crash']['artifact']}", flush=True)
    last = runs[-1] if runs else {}
    execs = sum(r.get("stats", {}).get("number_of_executed_units", r.get("execs", 0)) for r in runs)
    return {"seconds": seconds, "seed_inputs": seeds, "execs": execs,
            "execs_per_s": round(execs / max(1, seconds), 1),
            "coverage_edges": max((r.get("cov", 0) for r in runs), default=0),
            "coverage_features": max((r.get("ft", 0) for r in runs), default=0),
            "corpus_units": last.get("corpus_units"), "corpus_size": last.get("corpus_size"),
            "new_units": sum(r.get("stats", {}).get("new_units_added", 0) for r in runs),
            "peak_rss_mb": max((r.get("stats", {}).get("peak_rss_mb", 0) for r in runs), default=0),
            "runs": len(runs), "crashes": found}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"of {', '.join(TARGETS)} (default: every one)")
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "60")))
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--fresh", action="store_true", help="start from the seeds only (drop var/fuzz/)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target {', '.join(unknown)}")
    if args.fresh:
        shutil.rmtree(SCRATCH, ignore_errors=True)
    started = time.time()
    result: dict = {"engine": "atheris (libFuzzer)", "seconds_per_target": args.seconds, "targets": {}}
    for target in args.targets or list(TARGETS):
        print(f"== {target} ({args.seconds} s)", flush=True)
        result["targets"][target] = outcome = fuzz(target, args.seconds)
        print(f"   {outcome['execs']} inputs, coverage {outcome['coverage_edges']} edges "
              f"{outcome['coverage_features']} features, {len(outcome['crashes'])} crashes", flush=True)
    crashes = sum(len(t["crashes"]) for t in result["targets"].values())
    result["crashes"] = crashes
    # What earlier runs found, fixed since and kept in the corpus (each also a test of its area).
    result["regression_inputs"] = {target: [p.name for p in sorted((CORPUS / target).glob("regression-*"))]
                                   for target in TARGETS}
    result["summary"] = [f"{name}: {t['execs']} inputs in {t['seconds']} s, {t['coverage_edges']} edges, "
                         f"{len(t['crashes'])} crashes" for name, t in result["targets"].items()]
    result["_meta"] = {"ran_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                       "seconds": round(time.time() - started, 1), "python": platform.python_version(),
                       "atheris": _version("atheris"), "machine": platform.machine(), "cpus": os.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"written to {args.out}")
    return 1 if crashes else 0


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(package)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
