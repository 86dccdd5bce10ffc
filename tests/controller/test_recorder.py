"""Call-record writes survive a database outage: retried in order, nothing lost, nothing doubled."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.exc import OperationalError

from callrouter.controller.recorder import CallRecorder, is_transient
from callrouter.store.calls import CallRepository
from callrouter.store.testing import fresh_database

T = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)


class Outage:
    """The real store behind a database that refuses the first `failures` writes."""

    def __init__(self, store: CallRepository, failures: int):
        self.store = store
        self.failures = failures

    def __getattr__(self, name):
        method = getattr(self.store, name)

        def call(*args, **kwargs):
            if self.failures > 0:
                self.failures -= 1
                raise OperationalError("INSERT ...", {}, ConnectionRefusedError("database is down"))
            return method(*args, **kwargs)

        return call


def test_writes_during_an_outage_are_stored_in_order_once_it_is_back(tmp_path):
    with fresh_database("sqlite", tmp_path) as db:
        store = CallRepository(db)
        sleeps = []
        recorder = CallRecorder(Outage(store, failures=5), sleep=sleeps.append)
        recorder.start()
        recorder.open_call("c1", "cabinet", "+33100000001", "+33600000000", T, "w0")
        recorder.leg_started("c1", "c1-s1", "secretary", "sip:sec1@x", T)
        recorder.set_route("c1", "open", "rendez-vous", T)
        recorder.leg_ended("c1-s1", "200", T + dt.timedelta(seconds=30))
        recorder.close_call("c1", "answered", T + dt.timedelta(seconds=31))
        assert recorder.flush(10)
        recorder.stop()
        rec = store.get("c1")
        assert rec.outcome == "answered" and rec.route == "open"
        assert sorted(leg.kind for leg in rec.legs) == ["caller", "secretary"]
        assert all(leg.ended_at is not None for leg in rec.legs if leg.kind == "secretary")
        assert recorder.failures == 5 and sleeps[:3] == [0.2, 0.4, 0.8]


def test_a_write_refused_on_its_merits_is_dropped_not_retried_forever(tmp_path):
    with fresh_database("sqlite", tmp_path) as db:
        store = CallRepository(db)
        recorder = CallRecorder(store, sleep=lambda s: None)
        recorder.start()
        recorder.close_call("never-opened", "answered", T)
        recorder.open_call("c2", "cabinet", "+33100000001", None, T)
        assert recorder.flush(10)
        recorder.stop()
        assert store.get("c2").practice == "cabinet" and recorder.failures == 0


def test_transient_errors_are_told_apart():
    assert is_transient(OperationalError("x", {}, Exception("down")))
    assert is_transient(ConnectionRefusedError())
    assert not is_transient(ValueError("unknown outcome"))


def test_writes_queued_together_are_stored_with_one_commit(tmp_path):
    from sqlalchemy import event

    with fresh_database("sqlite", tmp_path) as db:
        store = CallRepository(db)
        commits = []
        event.listen(db.engine, "commit", lambda conn: commits.append(1))
        recorder = CallRecorder(store, sleep=lambda s: None)
        for i in range(20):  # queued before the thread runs: one batch
            recorder.open_call(f"c{i}", "cabinet", "+33100000001", "+33600000000", T, "w0")
            recorder.ivr_answered(f"c{i}", T)
            recorder.leg_started(f"c{i}", f"c{i}-s1", "secretary", "sip:sec1@x", T)
            recorder.leg_ended(f"c{i}-s1", "200", T + dt.timedelta(seconds=30))
            recorder.close_call(f"c{i}", "answered", T + dt.timedelta(seconds=31))
        recorder.start()
        assert recorder.flush(10)
        recorder.stop()
        assert len(commits) == 1
        for i in range(20):
            rec = store.get(f"c{i}")
            assert rec.outcome == "answered" and rec.ivr_answered_at is not None
            assert all(leg.ended_at is not None for leg in rec.legs) and len(rec.legs) == 2


def test_a_refused_write_in_a_batch_costs_only_itself(tmp_path):
    with fresh_database("sqlite", tmp_path) as db:
        store = CallRepository(db)
        recorder = CallRecorder(store, sleep=lambda s: None)
        recorder.open_call("c1", "cabinet", "+33100000001", None, T)
        recorder.leg_started("c1", "c1-s1", "secretary", "sip:sec1@x", T)
        recorder.close_call("never-opened", "answered", T)  # refused: the batch is rolled back
        recorder.leg_ended("c1-s1", "486", T + dt.timedelta(seconds=5))
        recorder.close_call("c1", "abandoned", T + dt.timedelta(seconds=6))
        recorder.start()
        assert recorder.flush(10)
        recorder.stop()
        rec = store.get("c1")
        assert rec.outcome == "abandoned" and recorder.failures == 0
        secretary = [leg for leg in rec.legs if leg.kind == "secretary"]
        assert len(secretary) == 1 and secretary[0].end_cause == "486"


def test_a_batch_through_an_outage_is_stored_once_it_is_back(tmp_path):
    with fresh_database("sqlite", tmp_path) as db:
        store = CallRepository(db)
        sleeps = []
        recorder = CallRecorder(Outage(store, failures=3), sleep=sleeps.append)
        recorder.open_call("c1", "cabinet", "+33100000001", None, T)
        recorder.leg_started("c1", "c1-s1", "secretary", "sip:sec1@x", T)
        recorder.leg_ended("c1-s1", "200", T + dt.timedelta(seconds=5))
        recorder.close_call("c1", "answered", T + dt.timedelta(seconds=6))
        recorder.start()
        assert recorder.flush(10)
        recorder.stop()
        rec = store.get("c1")
        assert rec.outcome == "answered" and len(rec.legs) == 2
        assert all(leg.ended_at is not None for leg in rec.legs)
        assert recorder.failures == 3 and sleeps == [0.2, 0.4]


def test_a_leg_ended_while_the_database_refuses_is_ended_once_it_answers(tmp_path):
    """The leg's id is kept until its end is stored: a failed try is tried again with it."""
    with fresh_database("sqlite", tmp_path) as db:
        store = CallRepository(db)
        outage = Outage(store, failures=0)
        recorder = CallRecorder(outage, sleep=lambda s: None)
        recorder.start()
        recorder.open_call("c1", "cabinet", "+33100000001", "+33600000000", T, "w0")
        recorder.leg_started("c1", "c1-s1", "secretary", "sip:sec1@x", T)
        assert recorder.flush(10)
        outage.failures = 3
        recorder.leg_ended("c1-s1", "200", T + dt.timedelta(seconds=30))
        assert recorder.flush(10)
        recorder.stop()
        [leg] = [leg for leg in store.get("c1").legs if leg.kind == "secretary"]
        assert leg.end_cause == "200" and recorder.failures == 3
