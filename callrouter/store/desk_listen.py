"""LISTEN on the shared desk's channel (callrouter.store.desk.CHANNEL): a thread of its own with a
dedicated connection, calling `on_notify(payload)` (the node that changed the desk) from that
thread. A lost connection is opened again after a second; what was missed meanwhile the periodic
reconcile catches."""

from __future__ import annotations

import logging
import threading
from typing import Callable

from callrouter.store.db import Database
from callrouter.store.desk import CHANNEL

logger = logging.getLogger(__name__)

RETRY_S = 1.0


class DeskListener:
    def __init__(self, db: Database, on_notify: Callable[[str], None]) -> None:
        self._db, self._on_notify = db, on_notify
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="desk-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(RETRY_S * 3)

    def _run(self) -> None:
        failing = False
        while not self._stopping.is_set():
            try:
                raw = self._db.engine.raw_connection()
                conn = raw.driver_connection
                raw.detach()  # ours for good: never handed back to the pool
                try:
                    conn.autocommit = True
                    conn.execute(f"LISTEN {CHANNEL}")
                    if failing:
                        logger.warning("desk notifications: listening again")
                    failing = False
                    while not self._stopping.is_set():
                        for notice in conn.notifies(timeout=RETRY_S):
                            self._on_notify(notice.payload)
                finally:
                    conn.close()
            except Exception as exc:  # the database gone: again in a moment, the reconcile meanwhile
                if not failing:
                    logger.warning("desk notifications: not listening (%s); the reconcile carries on", exc)
                failing = True
                self._stopping.wait(RETRY_S)
