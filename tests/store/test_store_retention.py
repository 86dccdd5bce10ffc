"""Retention: only what is past its retention is deleted, the purge is audited, atomically."""

import datetime as dt

import pytest
from sqlalchemy import func, select
from twisted.internet import defer, task

from callrouter.config import RetentionSettings
from callrouter.store.audit import Actor, AuditLog
from callrouter.store.calls import CallRepository
from callrouter.store.models import CallLeg, IvrAnswer
from callrouter.store.retention import PurgeService, RetentionPurger

NOW = dt.datetime(2026, 6, 1, 3, 0, tzinfo=dt.timezone.utc)
ADMIN = Actor("root", "cli")
SETTINGS = RetentionSettings(call_records_days=30, recordings_days=10, audit_days=60)


def ago(days, seconds=0):
    return NOW - dt.timedelta(days=days, seconds=seconds)


def make_call(calls, call_id, arrived, ended=None):
    calls.open_call(call_id, "p", "+33100000000", "+33611111111", arrived)
    calls.add_ivr_answer(call_id, "triage", "1", arrived)
    if ended is not None:
        calls.close_call(call_id, "answered", ended)


def test_purge_deletes_only_past_retention(db):
    calls, audit = CallRepository(db), AuditLog(db)
    make_call(calls, "old", ago(40), ago(40))
    make_call(calls, "edge-old", ago(30, 1), ago(30, 1))
    make_call(calls, "edge-new", ago(30, -1), ago(30, -1))
    make_call(calls, "new", ago(1), ago(1))
    make_call(calls, "old-open", ago(40))
    calls.add_recording("old", "rec/old.wav", ago(11), 30.0, ago(11))
    calls.add_recording("new", "rec/new.wav", ago(9), 30.0, ago(9))
    for days in (90, 61, 59, 1):
        audit.record(ADMIN, "user.update", f"u{days}", ago(days))

    result = RetentionPurger(db, SETTINGS).purge(ADMIN, NOW)

    assert (result.call_records, result.recordings, result.audit) == (2, 1, 2)
    remaining = sorted(c.id for c in calls.query(calls_query_all()))
    assert remaining == ["edge-new", "new", "old-open"]
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(CallLeg)
                        .where(CallLeg.call_id.in_(["old", "edge-old"]))) == 0
        assert s.scalar(select(func.count()).select_from(IvrAnswer)
                        .where(IvrAnswer.call_id == "old")) == 0
    assert sorted(e.target for e in audit.query(action="user.update")) == ["u1", "u59"]
    (entry,) = audit.query(action="retention.purge")
    assert '"call_records":2' in entry.details and '"audit":2' in entry.details
    assert audit.verify().ok


def test_closed_callback_tasks_go_with_the_call_records_open_ones_stay(db):
    from callrouter.store.tasks import TaskQuery, TaskRepository

    tasks = TaskRepository(db)
    for task_id, created, close in (("old-done", 40, "done"), ("old-open", 40, None), ("new-done", 1, "done")):
        tasks.create("p", "0612345678", "secretary", ago(created), ago(created) + dt.timedelta(days=100),
                     task_id=task_id)
        if close:
            tasks.done(task_id, None, None, ago(created))
    result = RetentionPurger(db, SETTINGS).purge(ADMIN, NOW)
    assert result.callback_tasks == 1
    assert sorted(t.id for t in tasks.list(TaskQuery(limit=10))) == ["new-done", "old-open"]


def test_ended_escalations_and_their_steps_go_with_the_call_records_running_ones_stay(db):
    from callrouter.store.escalations import EscalationRepository
    from callrouter.store.models import EscalationStepRecord

    chains = EscalationRepository(db)
    old = chains.create(None, "p", "vital", "+33611111111", ago(40)).id
    chains.claim_step(old, 0, 0, "sms", "dr-a", "+33600000001", ago(40))
    chains.finish(old, "exhausted", ago(40))
    running = chains.create(None, "p", "vital", "+33611111111", ago(40)).id
    recent = chains.create(None, "p", "vital", "+33611111111", ago(2)).id
    chains.finish(recent, "acknowledged", ago(2))
    result = RetentionPurger(db, SETTINGS).purge(ADMIN, NOW)
    assert result.escalations == 1
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(EscalationStepRecord)) == 0
    assert chains.get(running) and chains.get(recent)


def calls_query_all():
    from callrouter.store.calls import CallQuery

    return CallQuery(limit=1000)


def test_none_keeps_forever(db):
    calls = CallRepository(db)
    make_call(calls, "ancient", ago(5000), ago(5000))
    keep = RetentionSettings(call_records_days=None, recordings_days=None, audit_days=None)
    result = RetentionPurger(db, keep).purge(ADMIN, NOW)
    assert result.call_records == 0 and calls.get("ancient")


def test_failed_purge_changes_nothing(db, monkeypatch):
    calls, audit = CallRepository(db), AuditLog(db)
    make_call(calls, "old", ago(40), ago(40))
    import callrouter.store.retention as retention

    def broken_append(*args, **kwargs):
        raise RuntimeError("audit unavailable")

    monkeypatch.setattr(retention.audit, "append", broken_append)
    with pytest.raises(RuntimeError):
        RetentionPurger(db, SETTINGS).purge(ADMIN, NOW)
    assert calls.get("old").id == "old"
    assert audit.query(action="retention.purge") == []


def test_scheduled_purge_runs_at_start_and_every_interval(db):
    calls = CallRepository(db)
    clock = task.Clock()
    clock.advance(NOW.timestamp())
    make_call(calls, "old", ago(40), ago(40))
    service = PurgeService(RetentionPurger(db, SETTINGS), clock, 86400, defer.maybeDeferred)
    service.startService()
    assert service.last_result.call_records == 1
    make_call(calls, "later", ago(35), ago(35))
    clock.advance(86400)
    assert service.last_result.call_records == 1
    service.stopService()
    assert len(AuditLog(db).query(action="retention.purge")) == 2
    assert AuditLog(db).query(action="retention.purge")[0].actor == "system"
