"""Reads of patient data for the API are traced by the repository in the reading transaction: the
records and the entry naming who read them, with which filters and how many came back."""

import datetime as dt
import json

import pytest

from callrouter.domain.errors import UnknownCall
from callrouter.domain.tasks import TaskQuery, UnknownTask
from callrouter.ports import Actor, CallQuery
from callrouter.store.audit import AuditLog
from callrouter.store.calls import CallRepository
from callrouter.store.tasks import TaskRepository

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)
READER = Actor("sec", "192.0.2.7")


def entries(db):
    return [(e.actor, e.source, e.action, e.target, e.details and json.loads(e.details))
            for e in reversed(AuditLog(db).query())]


@pytest.fixture
def calls(db):
    repo = CallRepository(db)
    repo.open_call("a1", "cab-a", "+33142000001", "+33612345678", T0)
    repo.open_call("b1", "cab-b", "+33142000002", "+33612345679", T0)
    return repo


def test_a_call_list_is_read_with_its_trace(db, calls):
    got = calls.read(CallQuery(practices=frozenset({"cab-a"})), READER, T0, {"practice": "cab-a"})
    assert [c.id for c in got] == ["a1"]
    assert entries(db) == [("sec", "192.0.2.7", "calls.read", "calls", {"filters": {"practice": "cab-a"}, "records": 1})]


def test_an_export_is_traced_as_an_export(db, calls):
    got = calls.export(CallQuery(), READER, T0, {})
    assert sorted(c.id for c in got) == ["a1", "b1"]
    assert entries(db) == [("sec", "192.0.2.7", "calls.export", "calls", {"filters": {}, "records": 2})]


def test_one_call_is_read_with_its_legs_and_its_trace(db, calls):
    call = calls.read_one("a1", frozenset({"cab-a"}), READER, T0)
    assert call.id == "a1" and [leg.kind for leg in call.legs] == ["caller"]
    assert entries(db) == [("sec", "192.0.2.7", "calls.read", "call:a1", {"filters": {}, "records": 1})]


@pytest.mark.parametrize("call_id", ["b1", "missing"])
def test_a_call_outside_the_readers_practices_is_unknown_and_leaves_no_trace(db, calls, call_id):
    with pytest.raises(UnknownCall):
        calls.read_one(call_id, frozenset({"cab-a"}), READER, T0)
    assert entries(db) == []


def test_tasks_are_read_with_their_trace(db):
    tasks = TaskRepository(db)
    tasks.create("cab-a", "0612345678", "secretary", T0, T0 + dt.timedelta(hours=1), task_id="t1")
    tasks.create("cab-b", "0612345679", "secretary", T0, T0 + dt.timedelta(hours=1), task_id="t2")
    listed = tasks.read_list(TaskQuery(frozenset({"cab-a"})), READER, T0, {"practice": "cab-a"})
    assert [t.id for t in listed] == ["t1"]
    assert tasks.read("t1", None, READER, T0).id == "t1"
    with pytest.raises(UnknownTask):
        tasks.read("t2", frozenset({"cab-a"}), READER, T0)
    assert entries(db) == [("sec", "192.0.2.7", "tasks.read", "tasks", {"filters": {"practice": "cab-a"}, "records": 1}),
                           ("sec", "192.0.2.7", "tasks.read", "task:t1", {"records": 1})]


def test_reading_the_audit_trail_is_traced_after_the_entries_are_read(db):
    log = AuditLog(db)
    log.record(Actor("admin", "cli"), "user.create", "user:sec", T0)
    got = log.read(READER, T0, {"action": "user.create"}, action="user.create")
    assert [e.action for e in got] == ["user.create"]
    assert [e[2:] for e in entries(db)] == [("user.create", "user:sec", None),
                                            ("audit.read", "audit", {"filters": {"action": "user.create"}, "records": 1})]
