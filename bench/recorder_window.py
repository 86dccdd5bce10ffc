"""How long a call-record write waits before another node can read it: `python -m bench.recorder_window`.

What a node killed at any instant had not yet written is what a survivor cannot know when it
closes that node's calls (callrouter.store.reaping; docs/operations.md, "A lost node's calls").
Through the real CallRecorder and CallRepository on the real PostgreSQL (CALLROUTER_TEST_PG_URL,
as the tests), a probe call's `queued` write is submitted, then another connection polls until the
row shows it; RECORDER_WINDOW_PROBES probes (200), alone and then while the recorder also carries
RECORDER_WINDOW_RATE calls/s (100) of menu traffic. Written to bench/results/recorder_window.json.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def probe(db, recorder, n: int, tag: str) -> list[float]:
    from sqlalchemy import select

    from callrouter.store.models import CallRecord

    delays = []
    for i in range(n):
        call_id, now = f"{tag}{i:05d}", dt.datetime.now(dt.timezone.utc)
        recorder.open_call(call_id, "p", "+33100000042", "+33612345678", now, "w1")
        t0 = time.monotonic()
        recorder.queued(call_id, "general", now)
        while True:
            with db.transaction() as s:
                if s.scalar(select(CallRecord.queued_at).where(CallRecord.id == call_id)) is not None:
                    break
            time.sleep(0.001)
        delays.append(time.monotonic() - t0)
        time.sleep(0.02)
    return sorted(delays)


def load(recorder, rate: float, stop: threading.Event) -> None:
    i, t0 = 0, time.monotonic()
    while not stop.is_set():
        time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        call_id, now = f"l{i:07d}", dt.datetime.now(dt.timezone.utc)
        recorder.open_call(call_id, "p", "+33100000042", "+33600000000", now, "w1")
        recorder.ivr_answered(call_id, now)
        recorder.set_route(call_id, "open", "open", now)
        recorder.close_call(call_id, "abandoned", now)
        i += 1


def figures(delays: list[float]) -> dict:
    def at(q: float) -> float:
        return round(1000 * delays[min(len(delays) - 1, int(q * len(delays)))], 1)

    return {"probes": len(delays), "p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99),
            "max_ms": round(1000 * delays[-1], 1)}


def run() -> dict:
    from callrouter.controller.recorder import CallRecorder
    from callrouter.store.calls import CallRepository
    from callrouter.store.testing import fresh_database

    probes = int(os.environ.get("RECORDER_WINDOW_PROBES", "200"))
    rate = float(os.environ.get("RECORDER_WINDOW_RATE", "100"))
    with tempfile.TemporaryDirectory() as tmp, fresh_database("postgresql", Path(tmp)) as db:
        recorder = CallRecorder(CallRepository(db, "bench"))
        recorder.start()
        try:
            alone = figures(probe(db, recorder, probes, "a"))
            stop = threading.Event()
            feeder = threading.Thread(target=load, args=(recorder, rate, stop), daemon=True)
            feeder.start()
            try:
                loaded = figures(probe(db, recorder, probes, "b"))
            finally:
                stop.set()
                feeder.join(10)
        finally:
            recorder.stop()
    return {"alone": alone, "with_load": {"calls_per_s": rate, **loaded},
            "summary": [f"alone: p50 {alone['p50_ms']} ms, p99 {alone['p99_ms']} ms, max {alone['max_ms']} ms",
                        f"with {rate:g} calls/s: p50 {loaded['p50_ms']} ms, p99 {loaded['p99_ms']} ms, "
                        f"max {loaded['max_ms']} ms"]}


def main() -> int:
    result = run()
    out = REPO / "bench" / "results" / "recorder_window.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(result["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
