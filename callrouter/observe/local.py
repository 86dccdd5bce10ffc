"""A Prometheus of our own on loopback: Debian's `prometheus` binary with callrouter's rules,
scraping callrouter's metrics port. `make observe` runs one against `make run`'s port
(127.0.0.1:9108), its data in var/prometheus; the whole-service test runs one the same way with a
1-second scrape and the quick rules (callrouter.observe.rules.QUICK).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

REPO_RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "callrouter-rules.yml"
JOB = "callrouter"  # the rules' `up{job="callrouter"}`


def config(targets: Sequence[str], rule_files: Sequence[Path], scrape_interval: str = "15s",
           evaluation_interval: str | None = None) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval or scrape_interval},
        "rule_files": [str(Path(f).resolve()) for f in rule_files],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": list(targets)}]}],
    }


def write_config(path: Path, *args: Any, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config(*args, **kwargs), sort_keys=False))
    return path


def command(binary: str, config_file: Path, data_dir: Path, listen: str, retention: str = "15d") -> list[str]:
    return [binary, f"--config.file={config_file}", f"--storage.tsdb.path={data_dir}",
            f"--storage.tsdb.retention.time={retention}", f"--web.listen-address={listen}"]


def binary() -> str | None:
    return shutil.which("prometheus")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m callrouter.observe prometheus",
                                     description="Run a local Prometheus scraping callrouter, in the foreground.")
    parser.add_argument("--target", default="127.0.0.1:9108", help="callrouter's metrics address (make run's)")
    parser.add_argument("--listen", default="127.0.0.1:9090", help="Prometheus's own address (loopback)")
    parser.add_argument("--var", default="var", type=Path, help="where its config and data go")
    parser.add_argument("--rules", default=REPO_RULES, type=Path)
    args = parser.parse_args(argv)
    prometheus = binary()
    if prometheus is None:
        print("prometheus is missing: install the Debian package (make system-deps)", file=sys.stderr)
        return 1
    config_file = write_config(args.var / "observe" / "prometheus.yml", [args.target], [args.rules])
    data = (args.var / "prometheus").resolve()
    data.mkdir(parents=True, exist_ok=True)
    print(f"Prometheus: http://{args.listen}/  (scraping {args.target}; rules {args.rules}; data in {data})")
    print(f"  alerts: http://{args.listen}/alerts    Ctrl-C stops it")
    sys.stdout.flush()
    argv_ = command(prometheus, config_file.resolve(), data, args.listen)
    os.execv(prometheus, argv_)
    return 0  # pragma: no cover - exec does not return
