"""The call recorder's CPU per call, alone: `python -m bench.recorder_cost`.

The writes of a call in the menu (opened, answered, routed, closed 2 s later) queued at
RECORDER_COST_RATE calls/s (100 by default) for RECORDER_COST_SECONDS (5), through the real
CallRecorder and CallRepository on a fresh SQLite database, as the controller queues them; the
process's CPU time (the recorder's thread and the feeding loop) by call, and how long the writes
took to be stored. No service, no SIPp: a figure that moves little with the rest of the machine.
Run it with PYTHONPATH set to another checkout to measure that code the same way. Written to
bench/results/recorder_cost.json, or recorder_cost_<label>.json with RECORDER_COST_LABEL.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
T = dt.datetime(2026, 12, 1, 9, tzinfo=dt.timezone.utc)


def main() -> int:
    from callrouter.controller.recorder import CallRecorder
    from callrouter.store.calls import CallRepository
    from callrouter.store.db import Database

    rate = float(os.environ.get("RECORDER_COST_RATE", "100"))
    seconds = float(os.environ.get("RECORDER_COST_SECONDS", "5"))
    label = os.environ.get("RECORDER_COST_LABEL", "")
    calls = int(rate * seconds)
    with tempfile.TemporaryDirectory() as tmpdir:
        db = Database.from_url(f"sqlite:///{tmpdir}/calls.db")
        db.upgrade()
        recorder = CallRecorder(CallRepository(db))
        recorder.start()
        cpu0, t0 = time.process_time(), time.monotonic()
        held: list[tuple[str, dt.datetime]] = []
        for i in range(calls):
            time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            call_id, now = f"c{i:06d}", T + dt.timedelta(seconds=i / rate)
            recorder.open_call(call_id, "menu", "+33100000077", "+33600000000", now, "w1")
            recorder.ivr_answered(call_id, now)
            recorder.set_route(call_id, "open", "open", now, dialplan_version="v1", why=("open",))
            held.append((call_id, now))
            while held and (now - held[0][1]).total_seconds() >= 2.0:
                recorder.close_call(held.pop(0)[0], "abandoned", now)
        fed = time.monotonic() - t0
        for call_id, _ in held:
            recorder.close_call(call_id, "abandoned", T + dt.timedelta(seconds=seconds + 2))
        recorder.flush(120)
        stored = time.monotonic() - t0
        cpu = time.process_time() - cpu0
        recorder.stop()
        db.engine.dispose()
    import callrouter.controller.recorder as code

    out = {"code": str(Path(code.__file__).resolve().parent.parent.parent), "rate": rate, "calls": calls,
           "writes_per_call": 4, "cpu_ms_per_call": round(1000.0 * cpu / calls, 2),
           "fed_s": round(fed, 2), "stored_s": round(stored, 2), "load_average_1m": round(os.getloadavg()[0], 2)}
    name = f"recorder_cost_{label}.json" if label else "recorder_cost.json"
    (REPO / "bench" / "results" / name).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
