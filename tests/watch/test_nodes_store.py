"""The watch's rows shared by several nodes, on SQLite and PostgreSQL: never two runs under way on
one number (a unique index, whichever node inserts), the call back written by the node whose edge
got it and read by the node that placed it, and the retention purge of old runs."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from callrouter.config import RetentionSettings
from callrouter.domain.watch_views import FAILED, INTERRUPTED, PASSED, SCHEDULE, WatchRefused
from callrouter.ports import Actor
from callrouter.store.models import WatchAlert, WatchAttempt, WatchRun
from callrouter.store.retention import RetentionPurger
from callrouter.store.watch import IN_FLIGHT_LIMIT, WatchRepository

T0 = dt.datetime(2026, 6, 1, 1, 10, tzinfo=dt.timezone.utc)
DAY = (dt.datetime(2026, 5, 31, 22, 0, tzinfo=dt.timezone.utc), dt.datetime(2026, 6, 1, 22, 0, tzinfo=dt.timezone.utc))
NUMBER, FORWARDED_TO = "+33100000001", "+33100000009"
CALLER = "+33180000100"
ADMIN = Actor("sophie", "127.0.0.1")


def start(repo, key, number=NUMBER, at=T0, returns_on=None, caller=CALLER):
    return repo.start_run(key, "cab", number, returns_on or number, caller, "a1b2c3", SCHEDULE, at, at,
                          DAY, 48)


def test_two_nodes_racing_on_one_number_with_different_slots_start_one_run(db):
    """Different slot keys (a planned slot and a test asked for by hand): only the index stops the second."""
    repos = [WatchRepository(db, node=f"n{i}") for i in range(4)]
    got, refused, barrier = [], [], threading.Barrier(4)

    def race(i, repo):
        barrier.wait()
        try:
            got.append(start(repo, f"slot-{i}"))
        except WatchRefused as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=race, args=(i, r)) for i, r in enumerate(repos)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 1 and got[0] is not None
    assert refused == ["un appel de test de ce numéro est déjà en cours"] * 3
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(WatchRun).where(WatchRun.state == "calling")) == 1


def test_the_index_refuses_a_second_run_under_way_even_past_the_checks(db):
    a = WatchRepository(db, node="a")
    start(a, "k1")
    with pytest.raises(Exception):  # written straight to the table: the database itself refuses it
        with db.transaction() as s:
            s.add(WatchRun(slot_key="k2", practice="cab", number=NUMBER, returns_on=NUMBER, caller=CALLER,
                           token="x", trigger=SCHEDULE, node="b", state="calling", planned_at=T0, started_at=T0))


def test_a_run_left_calling_by_a_node_gone_for_good_frees_its_number_after_the_limit(db):
    gone, b = WatchRepository(db, node="gone"), WatchRepository(db, node="b")
    stale = start(gone, "k1")
    with pytest.raises(WatchRefused):
        start(b, "k2", at=T0 + IN_FLIGHT_LIMIT - dt.timedelta(minutes=1))
    run = start(b, "k3", at=T0 + IN_FLIGHT_LIMIT)
    assert run is not None and run.node == "b"
    assert b.get(stale.id).state == INTERRUPTED


def test_the_call_back_seen_by_another_node_is_read_by_the_node_that_placed_it(db):
    placing, edge = WatchRepository(db, node="a"), WatchRepository(db, node="b")
    run = start(placing, "k1", returns_on=FORWARDED_TO)
    assert placing.returns([run.id]) == []
    # Another call from the range, or to another number, is not this run's.
    assert edge.record_return("+33180000101", "0100000009", "", T0) is None
    assert edge.record_return(CALLER, NUMBER, "", T0) is None
    back = T0 + dt.timedelta(seconds=4)
    assert edge.record_return("0180000100", "0100000009", "Test renvoi a1b2c3", back) == run.id  # national forms match
    assert placing.returns([run.id]) == [(run.id, 1, back, True)]
    assert edge.record_return(CALLER, FORWARDED_TO, "", back) is None  # written once
    with db.transaction() as s:
        assert s.scalar(select(WatchAttempt.returned_node).where(WatchAttempt.run_id == run.id)) == "b"
    placing.end_attempt(run.id, 1, PASSED, back, rtt_ms=4000, name_kept=True)
    assert placing.returns([run.id]) == []  # the attempt is over
    placing.finish(run.id, PASSED, PASSED, back, 4000)
    assert edge.record_return(CALLER, FORWARDED_TO, "", back) is None  # late: no run under way


def test_the_call_back_goes_to_the_open_attempt_only(db):
    placing, edge = WatchRepository(db, node="a"), WatchRepository(db, node="b")
    run = start(placing, "k1")
    placing.end_attempt(run.id, 1, "no_return", T0 + dt.timedelta(seconds=30))
    assert edge.record_return(CALLER, NUMBER, "", T0 + dt.timedelta(seconds=40)) is None  # between attempts
    placing.add_attempt(run.id, 2, T0 + dt.timedelta(minutes=5))
    assert edge.record_return(CALLER, NUMBER, "", T0 + dt.timedelta(minutes=5, seconds=3)) == run.id
    assert [(r[0], r[1]) for r in placing.returns([run.id])] == [(run.id, 2)]


def test_the_retention_purge_deletes_old_ended_runs_with_their_attempts_and_alerts(db):
    repo = WatchRepository(db, node="a")
    now = T0 + dt.timedelta(days=500)

    def ended(key, state, at, number, acknowledged=False):
        run = start(repo, key, number=number, at=at)
        repo.finish(run.id, state, "passed" if state == PASSED else "no_return", at, alerts=[("email", "c@x.fr")])
        if acknowledged:
            repo.acknowledge(ADMIN, run.id, at)
        return run.id

    old_pass = ended("old-pass", PASSED, now - dt.timedelta(days=401), "+33100000001")
    old_ack = ended("old-ack", FAILED, now - dt.timedelta(days=401), "+33100000002", acknowledged=True)
    old_red = ended("old-red", FAILED, now - dt.timedelta(days=401), "+33100000003")
    recent = ended("recent", PASSED, now - dt.timedelta(days=399), "+33100000004")
    under_way = start(repo, "calling", number="+33100000005", at=now - dt.timedelta(days=450)).id
    result = RetentionPurger(db, RetentionSettings(call_records_days=None, recordings_days=None, audit_days=None,
                                                   state_history_days=None)).purge(ADMIN, now)
    assert result.watch_runs == 2 and result.to_json()["watch_runs"] == 2
    assert result.cutoffs["watch"] == (now - dt.timedelta(days=400)).isoformat()
    with db.transaction() as s:
        assert set(s.scalars(select(WatchRun.id))) == {old_red, recent, under_way}
        assert set(s.scalars(select(WatchAttempt.run_id))) == {old_red, recent, under_way}
        assert set(s.scalars(select(WatchAlert.run_id))) == {old_red}
    assert old_pass not in {r.id for r in repo.runs()} and old_ack not in {r.id for r in repo.runs()}


def test_watch_runs_kept_for_good_when_the_setting_is_null(db):
    repo = WatchRepository(db, node="a")
    run = start(repo, "k1")
    repo.finish(run.id, PASSED, PASSED, T0)
    result = RetentionPurger(db, RetentionSettings(watch_days=None)).purge(ADMIN, T0 + dt.timedelta(days=5000))
    assert result.watch_runs == 0 and result.cutoffs["watch"] is None
    assert [r.id for r in repo.runs()] == [run.id]
