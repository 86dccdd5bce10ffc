"""What the worker protocol costs per call: `python -m bench.protocol_cost`.

The messages of one call into the menu (its arrival, answer, two prompts, a digit, its end: ten
lines) encoded as one end does and decoded as the other does, through callrouter.media.protocol.
Counted in instructions with valgrind's callgrind (stable on a loaded machine, where CPU time is
not): the run of one call (start-up and imports) is subtracted from the run of CALLS + 1 calls.
`PROTOCOL_COST_BEFORE=<path of an older protocol.py>` counts that copy too, side by side (named in
the result by PROTOCOL_COST_BEFORE_NAME, e.g. the commit it was taken from). Written
to bench/results/protocol_cost.json.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CALLS = 200


def call_messages(p):
    leg = "w0-4242-1"
    return [
        p.IncomingCall(leg=leg, sip_call_id="a84b4c76e66710@127.0.0.1", from_uri="sip:+33600000000@127.0.0.1",
                       to_uri="sip:+33142000001@127.0.0.1", number="+33142000001", caller="+33600000000",
                       caller_name="", headers={"X-Forwarded-For-Line": "1"}),
        p.Answer(leg=leg), p.LegState(leg=leg, state="confirmed"),
        p.Play(leg=leg, path="/srv/prompts/welcome.wav"), p.PlaybackFinished(leg=leg, path="/srv/prompts/welcome.wav"),
        p.Play(leg=leg, path="/srv/prompts/triage.wav"), p.Digit(leg=leg, digit="3", method="rfc4733"),
        p.StopPlayback(leg=leg), p.Hangup(leg=leg), p.LegEnded(leg=leg, code=200, reason="OK", by="remote"),
    ]


def load(path: str | None):
    if not path:
        from callrouter.media import protocol
        return protocol
    spec = importlib.util.spec_from_file_location("protocol_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SIDES = ("both", "worker", "controller")


def run(p, calls: int, side: str = "both") -> float:
    """CPU seconds per call of `calls` calls' messages, encoded then read and decoded: by both ends,
    or by one (the worker encodes events and decodes commands, the controller the other way)."""
    messages = call_messages(p)
    lines = [(p.encode(m), m.type in p.COMMANDS) for m in messages]
    sends = [m for m in messages if side == "both" or (m.type in p.COMMANDS) == (side == "controller")]
    reads = [(line, command) for line, command in lines if side == "both" or command == (side == "worker")]

    def one_call() -> None:
        for m in sends:
            p.encode(m)
        reader = p.LineReader()
        for line, command in reads:
            for item in reader.feed(line):
                (p.decode_command if command else p.decode_event)(item)

    one_call()
    start = time.process_time()
    for _ in range(calls):
        one_call()
    return (time.process_time() - start) / max(1, calls)


def instructions(path: str | None, calls: int, side: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m",
                               "bench.protocol_cost", "--one", path or "", str(calls), side],
                              cwd=REPO, capture_output=True, text=True, timeout=900)
        match = re.search(r"Collected : (\d+)", done.stderr)
        if match is None:
            raise RuntimeError(done.stderr[-2000:])
        return int(match.group(1))


def main() -> int:
    if sys.argv[1:2] == ["--one"]:
        run(load(sys.argv[2] or None), int(sys.argv[3]), sys.argv[4])
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is missing (Debian package valgrind)")
        return 1
    out: dict = {"calls": CALLS, "messages_per_call": len(call_messages(load(None))),
                 "load_average": os.getloadavg(), "before": os.environ.get("PROTOCOL_COST_BEFORE_NAME", ""),
                 "instructions_per_call": {}, "cpu_us_per_call": {}}
    for label, path in (("before", os.environ.get("PROTOCOL_COST_BEFORE")), ("now", None)):
        if label == "before" and not path:
            continue
        out["instructions_per_call"][label] = {
            side: (instructions(path, CALLS, side) - instructions(path, 0, side)) // CALLS for side in SIDES}
        out["cpu_us_per_call"][label] = round(1e6 * run(load(path), 2000), 1)
    target = REPO / "bench" / "results" / "protocol_cost.json"
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
