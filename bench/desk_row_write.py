"""How long a waiting call's row takes to be seen by the other nodes: `python -m bench.desk_row_write`.

A shared desk's waiting row (callrouter.store.desk.DeskStore.put_waiting) written from the
reactor through its thread pool, as a node writes a call joining its line, timed until the
commit is back on the reactor; DESK_ROW_WRITES rows (300 by default), 10 ms apart, each removed
after, on a fresh database of the PostgreSQL at 127.0.0.1:5432 (callrouter.store.testing). This
is the window in which another node cannot serve that call in order (docs/operations.md, "One
team served by several nodes"). Written to bench/results/desk_row_write.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    from twisted.internet import defer, reactor, threads

    from callrouter.domain.desk_view import WaitingRow
    from callrouter.store.desk import DeskStore
    from callrouter.store.leases import PostgresLeases
    from callrouter.store.testing import fresh_database

    count = int(os.environ.get("DESK_ROW_WRITES", "300"))
    took: list[float] = []

    @defer.inlineCallbacks
    def run(db):
        try:
            epoch = PostgresLeases(db).acquire("bench", 300, "host", 1).epoch
            store = DeskStore(db, "bench")
            for i in range(count):
                row = WaitingRow(f"c{i}", "bench", "p", "general", "p/general", 0, time.time(), i)
                start = time.monotonic()
                yield threads.deferToThread(store.put_waiting, row, epoch)
                took.append((time.monotonic() - start) * 1000)
                yield threads.deferToThread(store.remove_waiting, row.call_id)
                pause = defer.Deferred()
                reactor.callLater(0.01, pause.callback, None)
                yield pause
        finally:
            reactor.stop()

    with tempfile.TemporaryDirectory() as tmp, fresh_database("postgresql", Path(tmp)) as db:
        reactor.callWhenRunning(run, db)
        reactor.run()
    took.sort()
    result = {"rows": len(took), "median_ms": round(statistics.median(took), 1),
              "p95_ms": round(took[int(len(took) * 0.95)], 1), "max_ms": round(took[-1], 1),
              "load": os.getloadavg()[0]}
    out = REPO / "bench" / "results" / "desk_row_write.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
