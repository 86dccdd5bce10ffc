"""The watch in the store, on SQLite and PostgreSQL: a slot runs once whatever the nodes, the daily
budget and one call per number hold across nodes, a failure's alerts are stored with its verdict
and sent once, a restart never sends an alert it may have sent, and acknowledging is audited."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from callrouter.domain.watch_views import FAILED, INTERRUPTED, PASSED, SCHEDULE, UnknownRun, WatchRefused
from callrouter.ports import Actor
from callrouter.store.audit import AuditLog
from callrouter.store.watch import MAX_ALERT_ATTEMPTS, WatchRepository

T0 = dt.datetime(2026, 6, 1, 1, 10, tzinfo=dt.timezone.utc)
DAY = (dt.datetime(2026, 5, 31, 22, 0, tzinfo=dt.timezone.utc), dt.datetime(2026, 6, 1, 22, 0, tzinfo=dt.timezone.utc))
NUMBER, OTHER = "+33100000001", "+33100000002"
ADMIN = Actor("sophie", "127.0.0.1")


def start(repo, key="cab|+33100000001|1", number=NUMBER, at=T0, cap=4, practice="cab"):
    return repo.start_run(key, practice, number, number, "+33180000100", "a1b2c3", SCHEDULE, at, at, DAY, cap)


def test_a_slot_is_claimed_once_by_whichever_node(db):
    a, b = WatchRepository(db, node="a"), WatchRepository(db, node="b")
    run = start(a)
    assert run.state == "calling" and run.node == "a" and [x.n for x in run.attempts] == [1]
    assert start(b) is None  # the other node finds the slot claimed
    assert start(a) is None  # and so does this one after a restart


def test_two_nodes_racing_for_one_slot_start_it_once(db):
    repos = [WatchRepository(db, node=f"n{i}") for i in range(4)]
    got, barrier = [], threading.Barrier(4)

    def race(repo):
        barrier.wait()
        try:
            got.append(start(repo))
        except WatchRefused:  # lost to the one under way on the number
            got.append(None)

    threads = [threading.Thread(target=race, args=(r,)) for r in repos]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([r for r in got if r is not None]) == 1


def test_the_day_budget_reserves_each_run_its_retry(db):
    repo = WatchRepository(db)
    first = start(repo, "k1", cap=4)
    repo.finish(first.id, PASSED, "passed", T0)
    start(repo, "k2", at=T0 + dt.timedelta(hours=1), cap=4)
    with pytest.raises(WatchRefused, match="nombre d'appels de test du jour"):
        start(repo, "k3", number=OTHER, at=T0 + dt.timedelta(hours=2), cap=4)
    # Another practice has its own budget; the next day starts afresh.
    assert start(repo, "k4", number=OTHER, cap=4, practice="other") is not None


def test_a_number_under_way_on_any_node_is_not_called_again(db):
    start(WatchRepository(db, node="a"), "k1")
    with pytest.raises(WatchRefused, match="déjà en cours"):
        start(WatchRepository(db, node="b"), "k2", at=T0 + dt.timedelta(minutes=1))
    assert start(WatchRepository(db, node="b"), "k3", number=OTHER) is not None


def test_a_failure_stores_its_alerts_once_and_each_is_sent_once(db):
    changes = []
    repo = WatchRepository(db, on_change=lambda view: changes.append((view.id, view.state)))
    run = start(repo)
    repo.end_attempt(run.id, 1, "busy", T0 + dt.timedelta(seconds=2), sip_code=486)
    repo.add_attempt(run.id, 2, T0 + dt.timedelta(minutes=5))
    repo.end_attempt(run.id, 2, "no_return", T0 + dt.timedelta(minutes=6), rang=False)
    contacts = [("email", "cab@example.fr"), ("sms", "+33612345678"), ("email", "cab@example.fr")]
    view = repo.finish(run.id, FAILED, "no_return", T0 + dt.timedelta(minutes=6), alerts=contacts)
    assert view.alarm and [(a.n, a.outcome, a.sip_code) for a in view.attempts] == [(1, "busy", 486),
                                                                                    (2, "no_return", None)]
    assert sorted((a.channel, a.state) for a in view.alerts) == [("email", "pending"), ("sms", "pending")]
    assert repo.finish(run.id, FAILED, "no_return", T0, alerts=contacts).alerts == view.alerts  # once
    assert changes == [(run.id, "calling"), (run.id, FAILED), (run.id, FAILED)]
    pending = repo.pending_alerts()
    assert [a.channel for a, _ in pending] == ["email", "sms"] and pending[0][1].id == run.id
    first = pending[0][0]
    assert repo.claim_alert(first.id, T0) and not repo.claim_alert(first.id, T0)  # a second claim loses
    repo.alert_sent(first.id, "msg-1", T0)
    assert not repo.claim_alert(first.id, T0)
    assert [a.channel for a, _ in repo.pending_alerts()] == ["sms"]


def test_a_failed_send_is_taken_again_a_few_times_only(db):
    repo = WatchRepository(db)
    run = start(repo)
    view = repo.finish(run.id, FAILED, "busy", T0, alerts=[("sms", "+33612345678")])
    alert = view.alerts[0]
    for _ in range(MAX_ALERT_ATTEMPTS):
        assert repo.claim_alert(alert.id, T0)
        repo.alert_failed(alert.id, "gateway answered HTTP 500")
    assert not repo.claim_alert(alert.id, T0) and repo.pending_alerts() == []


def test_a_pass_stores_no_alert(db):
    repo = WatchRepository(db)
    run = start(repo)
    view = repo.finish(run.id, PASSED, "passed", T0, rtt_ms=1234, alerts=[("sms", "+33612345678")])
    assert (view.state, view.rtt_ms, view.alerts, view.alarm) == (PASSED, 1234, (), False)


def test_a_restart_closes_its_runs_as_interrupted_and_never_resends_a_claimed_alert(db):
    a, b = WatchRepository(db, node="a"), WatchRepository(db, node="b")
    cut = start(a, "k1", cap=48)
    failed = a.finish(start(a, "k2", number=OTHER, cap=48).id, FAILED, "busy", T0, alerts=[("sms", "+33612345678")])
    assert a.claim_alert(failed.alerts[0].id, T0)  # ...and the node stops while sending
    other = start(b, "k3", number="+33100000003", cap=48)
    assert a.interrupted(T0) == (1, 1)
    assert a.get(cut.id).state == INTERRUPTED and b.get(other.id).state == "calling"  # not another node's
    assert a.get(failed.id).alerts[0].state == "unknown" and a.pending_alerts() == []


def test_acknowledging_a_failure_is_audited_and_takes_it_off_the_alarms(db):
    repo = WatchRepository(db)
    run = start(repo)
    repo.finish(run.id, FAILED, "answered", T0)
    assert [r.id for r in repo.alarms()] == [run.id]
    view = repo.acknowledge(ADMIN, run.id, T0 + dt.timedelta(minutes=3))
    assert (view.acknowledged_by, view.alarm) == ("sophie", False) and repo.alarms() == []
    assert repo.acknowledge(ADMIN, run.id, T0 + dt.timedelta(hours=1)).acknowledged_at == view.acknowledged_at
    [entry] = [e for e in AuditLog(db).query() if e.action == "watch.acknowledge"]
    assert (entry.actor, entry.target) == ("sophie", f"watch:{run.id}")
    passed = start(repo, "k2", number=OTHER, cap=48)
    repo.finish(passed.id, PASSED, "passed", T0)
    with pytest.raises(WatchRefused):
        repo.acknowledge(ADMIN, passed.id, T0)
    with pytest.raises(UnknownRun):
        repo.acknowledge(ADMIN, 999, T0)


def test_reading_the_runs_the_last_verdict_of_each_number_and_a_practice_s_history(db):
    repo = WatchRepository(db)
    for i, (number, state) in enumerate([(NUMBER, FAILED), (NUMBER, PASSED), (OTHER, FAILED)]):
        run = start(repo, f"k{i}", number=number, at=T0 + dt.timedelta(hours=i), cap=48)
        repo.finish(run.id, state, "passed" if state == PASSED else "busy", T0 + dt.timedelta(hours=i))
    start(repo, "k9", number="+33100000003", at=T0 + dt.timedelta(hours=5), cap=48)  # under way: no verdict
    assert [(r.number, r.state) for r in repo.latest()] == [(NUMBER, PASSED), (OTHER, FAILED)]
    assert [r.number for r in repo.runs(["cab"], limit=2)] == ["+33100000003", OTHER]
    assert repo.runs(["elsewhere"]) == [] and repo.latest(["elsewhere"]) == []
