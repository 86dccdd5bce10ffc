"""The call recorder's memory is bounded through a database outage: past its bound the writes go to
an append-only file, are stored from it in order once the database is back, and the file goes; a
recorder stopped during the outage leaves its writes there, and the next one stores them first.
On SQLite with the outage in front of the real store, and on a private PostgreSQL really stopped."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

from sqlalchemy.exc import OperationalError

from callrouter.controller.recorder import CallRecorder
from callrouter.controller.spill import Spill
from callrouter.store.calls import CallQuery, CallRepository
from callrouter.store.db import Database
from callrouter.store.tasks import TaskRepository
from callrouter.store.testing import fresh_database
from tests.pg_private import private_pg  # noqa: F401 (fixture)

T = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)


class Switch:
    """The real store behind a database that is down while `down` is set (refused: OperationalError),
    or gone for good once `gone` is (refused on its merits: the recorder drops the write)."""

    def __init__(self, store) -> None:
        self.store, self.down, self.gone = store, threading.Event(), False

    def __getattr__(self, name):
        method = getattr(self.store, name)

        def call(*args, **kwargs):
            if self.gone:
                raise ValueError("gone")
            if self.down.is_set():
                raise OperationalError("INSERT ...", {}, ConnectionRefusedError("database is down"))
            return method(*args, **kwargs)

        return call


def a_call(recorder: CallRecorder, call_id: str, at: dt.datetime) -> None:
    """Eight writes: a queued call answered by a secretary, both legs ended, closed."""
    recorder.open_call(call_id, "cabinet", "+33100000001", "+33600000000", at, "w0")
    recorder.leg_started(call_id, f"{call_id}-caller", "caller", "+33600000000", at)
    recorder.queued(call_id, "general", at)
    recorder.leg_started(call_id, f"{call_id}-s", "secretary", "sip:s@127.0.0.1", at)
    recorder.answered(call_id, "sip:s@127.0.0.1", at + dt.timedelta(seconds=5))
    recorder.leg_ended(f"{call_id}-s", "200 OK", at + dt.timedelta(seconds=60))
    recorder.leg_ended(f"{call_id}-caller", "200 OK", at + dt.timedelta(seconds=60))
    recorder.close_call(call_id, "answered", at + dt.timedelta(seconds=61))


def check_calls(store: CallRepository, ids: list[str]) -> None:
    records = store.query(CallQuery(limit=1000))
    assert sorted(r.id for r in records) == sorted(ids)
    for record in records:
        assert record.outcome == "answered" and record.secretary == "sip:s@127.0.0.1", record
        assert sorted(leg.kind for leg in record.legs) == ["caller", "secretary"], record.legs
        assert all(leg.end_cause == "200 OK" for leg in record.legs), record.legs


def wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_past_the_bound_writes_go_to_the_file_and_are_stored_in_order_once_the_database_is_back(tmp_path):
    with fresh_database("sqlite", tmp_path) as db:
        store, tasks = CallRepository(db), TaskRepository(db)
        switch = Switch(store)
        path = tmp_path / "var" / "call-records.spill"
        recorder = CallRecorder(switch, sleep=lambda s: time.sleep(0.01), spill=Spill(path, {"tasks": tasks}),
                                bound=20)
        recorder.start()
        try:
            switch.down.set()
            ids = [f"c{n}" for n in range(30)]
            for n, call_id in enumerate(ids):
                a_call(recorder, call_id, T + dt.timedelta(minutes=n))
            recorder.submit(tasks.create, "cabinet", "+33600000001", "overflow", T, T + dt.timedelta(hours=4),
                            task_id="t1")
            flushed = []
            threading.Thread(target=lambda: flushed.append(recorder.flush(30)), daemon=True).start()
            time.sleep(0.2)
            assert 30 * 8 + 2 <= recorder.pending() <= 30 * 8 + 3  # the flush marker, where the file comes
            assert recorder._queue.qsize() <= 20 + 1  # the bound, and where the file comes in the order
            lines = path.read_bytes().splitlines()
            assert len(lines) == recorder.spilled() >= 30 * 8 - 21
            assert json.loads(lines[-1]) == {"held": 1}  # the flush marker: in memory, its place kept
            assert json.loads(lines[-2])["call"] == ["tasks", "create"]
            assert any('"$dt"' in line.decode() for line in lines)
            switch.down.clear()
            assert wait(lambda: flushed == [True], 30), recorder.pending()
            assert not path.exists() and recorder.pending() == 0
            check_calls(store, ids)
            assert tasks.get("t1").practice == "cabinet"
            a_call(recorder, "after", T + dt.timedelta(hours=2))  # the queue again, not the file
            assert recorder.flush(10) and not path.exists()
            check_calls(store, [*ids, "after"])
        finally:
            recorder.stop(5)


def test_a_recorder_stopped_during_the_outage_leaves_its_writes_to_the_next_which_stores_them_first(tmp_path):
    with fresh_database("sqlite", tmp_path) as db:
        store = CallRepository(db)
        switch = Switch(store)
        path = tmp_path / "call-records.spill"
        first = CallRecorder(switch, sleep=lambda s: time.sleep(0.01), spill=Spill(path), bound=10)
        first.start()
        # A call whose legs were stored before the outage, ended during it: its leg ids travel too.
        first.open_call("before", "cabinet", "+33100000001", "+33600000000", T, "w0")
        first.leg_started("before", "before-caller", "caller", "+33600000000", T)
        first.queued("before", "general", T)
        first.leg_started("before", "before-s", "secretary", "sip:s@127.0.0.1", T)
        first.answered("before", "sip:s@127.0.0.1", T)
        assert first.flush(10)
        switch.down.set()
        first.leg_ended("before-s", "200 OK", T + dt.timedelta(seconds=60))
        first.leg_ended("before-caller", "200 OK", T + dt.timedelta(seconds=60))
        first.close_call("before", "answered", T + dt.timedelta(seconds=61))
        ids = [f"d{n}" for n in range(5)]
        for n, call_id in enumerate(ids):
            a_call(first, call_id, T + dt.timedelta(minutes=n + 1))
        assert wait(lambda: first.failures > 0)
        first.stop(timeout=0.5)  # the database is still down: the writes are saved for the next start
        switch.gone = True  # the first recorder's thread, still trying, lets go
        saved = path.read_bytes().splitlines()
        assert sorted(json.loads(saved[0])["legs"]) == ["before-caller", "before-s"]  # their ids, for leg_ended
        assert len(saved) >= 3 + 5 * 8  # the leg ids, then every write not stored

        second = CallRecorder(store, sleep=lambda s: time.sleep(0.01), spill=Spill(path), bound=10)
        assert second.pending() == len(saved)
        second.start()
        a_call(second, "new", T + dt.timedelta(hours=1))  # behind the saved writes
        try:
            assert second.flush(30) and not path.exists()
            check_calls(store, ["before", *ids, "new"])
        finally:
            second.stop(5)


def test_on_postgresql_really_stopped_memory_stays_bounded_and_nothing_is_lost(private_pg, tmp_path):  # noqa: F811
    db = Database.from_url(private_pg.url)
    db.upgrade()
    path = tmp_path / "call-records.spill"
    recorder = CallRecorder(CallRepository(db), max_backoff_s=1.0, spill=Spill(path), bound=30)
    recorder.start()
    try:
        now = dt.datetime.now(dt.timezone.utc)
        a_call(recorder, "pg-0", now)
        assert recorder.flush(30)
        private_pg.stop()
        ids = ["pg-0"] + [f"pg-{n}" for n in range(1, 21)]
        for n, call_id in enumerate(ids[1:], 1):
            a_call(recorder, call_id, now + dt.timedelta(seconds=n))
        assert recorder.pending() >= 20 * 8 - 8 and recorder._queue.qsize() <= 30 + 1
        assert path.exists() and recorder.spilled() >= 20 * 8 - 31
        private_pg.start()
        assert recorder.flush(60), f"{recorder.pending()} writes still queued"
        assert not path.exists()
        check_calls(CallRepository(db), ids)
    finally:
        recorder.stop(5)
        db.dispose()
