"""Callback tasks on SQLite and PostgreSQL: idempotent creation and transitions, expiry, the line
order the controller reloads, refused transitions, and the audit trail."""

import datetime as dt
import json
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from callrouter.domain.phone import InvalidNumber
from callrouter.store.audit import SYSTEM, Actor, AuditLog
from callrouter.store.tasks import TaskQuery, TaskRepository, TaskStateError, UnknownTask, purge_closed

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)
SEC = Actor("sec", "127.0.0.1")


def at(minutes):
    return T0 + dt.timedelta(minutes=minutes)


def task(repo, task_id="t1", practice="cab", number="06 12 34 56 78", place=0, expires=240, **kw):
    return repo.create(practice, number, kw.pop("source", "overflow"), at(place), at(expires),
                       task_id=task_id, place_at=at(place), **kw)


def test_a_task_is_created_open_with_its_number_normalised(db):
    repo = TaskRepository(db)
    t = repo.create("cab", "06 12 34 56 78", "overflow", at(5), at(245), task_id="t1",
                    place_at=at(0), queue="general", call_id="call-1", note="  rappeler   avant midi ")
    assert (t.id, t.state, t.number, t.attempts, t.assigned_to) == ("t1", "open", "+33612345678", 0, None)
    assert (t.place_at, t.created_at, t.expires_at, t.updated_at) == (at(0), at(5), at(245), at(5))
    assert (t.queue, t.call_id, t.note, t.source) == ("general", "call-1", "rappeler avant midi", "overflow")
    assert repo.get("t1") == t


def test_the_repository_chooses_the_id_when_none_is_given_and_place_defaults_to_now(db):
    repo = TaskRepository(db)
    t = repo.create("cab", "+33612345678", "secretary", at(0), at(60), created_by="sec")
    assert len(t.id) == 32 and int(t.id, 16) >= 0
    assert (t.place_at, t.created_by) == (at(0), "sec")


def test_creating_the_same_id_twice_returns_the_first_task_unchanged(db):
    repo = TaskRepository(db)
    first = task(repo, actor=SYSTEM)
    again = repo.create("other", "0699999999", "voicemail", at(30), at(300), task_id="t1", actor=SYSTEM)
    assert again == first
    assert len(repo.list(TaskQuery())) == 1
    assert len(AuditLog(db).query(action="task.create")) == 1


def test_concurrent_creations_of_one_id_make_one_task(db):
    repo = TaskRepository(db)
    with ThreadPoolExecutor(6) as pool:
        views = list(pool.map(lambda i: task(repo, "same", note=f"n{i}"), range(6)))
    assert len({v.note for v in views}) == 1
    assert [v.id for v in repo.list(TaskQuery())] == ["same"]


@pytest.mark.parametrize("number", ["0892123456", "15", "+44 20 7946 0958", "not a number"])
def test_a_number_we_may_not_call_back_is_refused_and_nothing_is_stored(db, number):
    repo = TaskRepository(db)
    with pytest.raises(InvalidNumber):
        task(repo, number=number)
    assert repo.list(TaskQuery()) == []


def test_bad_source_id_or_deadline_are_refused(db):
    repo = TaskRepository(db)
    with pytest.raises(ValueError, match="unknown task source"):
        task(repo, source="fax")
    with pytest.raises(ValueError, match="bad task id"):
        task(repo, task_id="a b")
    with pytest.raises(ValueError, match="deadline"):
        repo.create("cab", "0612345678", "overflow", at(10), at(10), task_id="t2")
    assert repo.list(TaskQuery()) == []


def test_a_callback_is_tried_until_the_patient_answers_and_keeps_the_call_that_reached_them(db):
    repo = TaskRepository(db)
    task(repo)
    assert repo.assign("t1", "sec", at(1)).state == "assigned"
    t = repo.start_attempt("t1", "sec", "leg-1", at(2))
    assert (t.state, t.attempts, t.attempt_leg, t.last_attempt_at) == ("calling", 1, "leg-1", at(2))
    assert repo.start_attempt("t1", "sec", "leg-1", at(3)) == t  # a replay: still one attempt
    t = repo.attempt_failed("t1", at(4), leg="leg-1")
    assert (t.state, t.assigned_to, t.attempt_leg) == ("assigned", "sec", None)
    assert repo.attempt_failed("t1", at(5)) == t  # a replay
    t = repo.start_attempt("t1", "sip:accueil@192.0.2.10", "leg-2", at(6))
    assert (t.attempts, t.assigned_to) == (2, "sip:accueil@192.0.2.10")
    t = repo.done("t1", "out-2", "leg-2", at(7))
    assert (t.state, t.done_at, t.done_call_id, t.done_leg, t.attempt_leg) == \
        ("done", at(7), "out-2", "leg-2", None)
    assert repo.done("t1", "out-2", "leg-2", at(8)) == t  # a replay
    assert repo.attempt_failed("t1", at(9), leg="leg-2") == t  # a late report reopens nothing


def test_a_stale_failure_report_does_not_end_a_newer_attempt(db):
    repo = TaskRepository(db)
    task(repo)
    repo.start_attempt("t1", "sec", "leg-2", at(1))
    assert repo.attempt_failed("t1", at(2), leg="leg-1").state == "calling"


@pytest.mark.parametrize("setup, action, message", [
    ("expired", lambda r: r.done("t1", "out-1", "leg-1", at(300)), "cannot complete task t1: it is expired"),
    ("expired", lambda r: r.assign("t1", "sec", at(300)), "it is expired"),
    ("expired", lambda r: r.start_attempt("t1", "sec", "leg-1", at(300)), "it is expired"),
    ("cancelled", lambda r: r.done("t1", None, None, at(3)), "it is cancelled"),
    ("cancelled", lambda r: r.start_attempt("t1", "sec", "leg-1", at(3)), "it is cancelled"),
    ("calling", lambda r: r.assign("t1", "other", at(3)), "it is being called"),
    ("calling", lambda r: r.cancel("t1", "sec", at(3)), "wait for the call to end"),
    ("calling", lambda r: r.start_attempt("t1", "other", "leg-9", at(3)), "another call is under way"),
    ("done", lambda r: r.cancel("t1", "sec", at(3)), "it is done"),
    ("done", lambda r: r.done("t1", "out-9", "leg-9", at(3)), "done by another call"),
    ("done", lambda r: r.assign("t1", "sec", at(3)), "it is done"),
])
def test_invalid_transitions_are_refused_and_change_nothing(db, setup, action, message):
    repo = TaskRepository(db)
    task(repo)
    if setup == "expired":
        repo.expire_due(at(240))
    elif setup == "cancelled":
        repo.cancel("t1", "sec", at(2))
    elif setup == "calling":
        repo.start_attempt("t1", "sec", "leg-1", at(2))
    elif setup == "done":
        repo.done("t1", "out-1", "leg-1", at(2))
    before = repo.get("t1")
    with pytest.raises(TaskStateError, match=message) as exc:
        action(repo)
    assert (exc.value.task_id, exc.value.state) == ("t1", setup)
    assert repo.get("t1") == before


def test_an_unknown_task_is_reported(db):
    repo = TaskRepository(db)
    with pytest.raises(UnknownTask):
        repo.get("nope")
    with pytest.raises(UnknownTask):
        repo.assign("nope", "sec", at(0))
    with pytest.raises(UnknownTask):
        repo.attempt_failed("nope", at(0))


def test_cancel_records_who_and_why_and_is_idempotent(db):
    repo = TaskRepository(db)
    task(repo)
    t = repo.cancel("t1", "sec", at(3), reason=" patient  rappelé directement ")
    assert (t.state, t.cancelled_by, t.cancel_reason, t.updated_at) == \
        ("cancelled", "sec", "patient rappelé directement", at(3))
    assert repo.cancel("t1", "sec", at(4)) == t


def test_expiry_takes_only_waiting_tasks_past_their_deadline(db):
    repo = TaskRepository(db)
    task(repo, "open-late", expires=60)
    task(repo, "assigned-late", expires=60)
    repo.assign("assigned-late", "sec", at(1))
    task(repo, "calling-late", expires=60)
    repo.start_attempt("calling-late", "sec", "leg-1", at(1))
    task(repo, "done-late", expires=60)
    repo.done("done-late", None, None, at(1))
    task(repo, "in-time", expires=61)
    expired = repo.expire_due(at(60))
    assert sorted(t.id for t in expired) == ["assigned-late", "open-late"]
    assert all(t.state == "expired" and t.updated_at == at(60) for t in expired)
    assert repo.expire_due(at(60)) == []
    assert repo.get("calling-late").state == "calling"
    repo.attempt_failed("calling-late", at(62))
    assert [t.id for t in repo.expire_due(at(62))] == ["calling-late", "in-time"]


def test_pending_is_the_line_the_controller_reloads_in_place_order(db):
    repo = TaskRepository(db)
    task(repo, "b", place=-10)
    task(repo, "late", place=-30, expires=30)  # deadline passed, not yet swept
    task(repo, "a", place=-20)
    task(repo, "c", place=-5)
    repo.assign("c", "sec", at(0))
    task(repo, "calling", place=-40)
    repo.start_attempt("calling", "sec", "leg-1", at(0))
    task(repo, "gone", place=-50)
    repo.cancel("gone", "sec", at(0))
    assert [t.id for t in repo.pending(at(30))] == ["a", "b", "c"]


def test_a_restart_puts_tasks_left_calling_back_in_line(db):
    repo = TaskRepository(db)
    task(repo, "t1", place=-5)
    repo.start_attempt("t1", "sec", "leg-1", at(1))
    task(repo, "t2", place=-1)
    released = repo.release_interrupted(at(10), actor=SYSTEM)
    assert [(t.id, t.state, t.assigned_to, t.attempts) for t in released] == [("t1", "assigned", "sec", 1)]
    assert [t.id for t in repo.pending(at(10))] == ["t1", "t2"]
    assert repo.release_interrupted(at(11)) == []
    [entry] = AuditLog(db).query(action="task.attempt_failed")
    assert json.loads(entry.details) == {"cause": "interrupted by a restart"}


def test_list_filters_by_practice_and_state_in_line_order(db):
    repo = TaskRepository(db)
    task(repo, "a2", "cab-a", place=2)
    task(repo, "a1", "cab-a", place=1)
    task(repo, "b1", "cab-b", place=0)
    repo.cancel("a2", "sec", at(3))
    assert [t.id for t in repo.list(TaskQuery())] == ["b1", "a1", "a2"]
    assert [t.id for t in repo.list(TaskQuery(practices=frozenset({"cab-a"})))] == ["a1", "a2"]
    assert [t.id for t in repo.list(TaskQuery(frozenset({"cab-a"}), frozenset({"open"})))] == ["a1"]
    assert [t.id for t in repo.list(TaskQuery(states=frozenset({"open", "cancelled"}), limit=2))] == \
        ["b1", "a1"]
    assert repo.list(TaskQuery(practices=frozenset())) == []


def test_two_secretaries_calling_at_once_one_call_wins(db):
    repo = TaskRepository(db)
    task(repo)

    def call(who):
        try:
            return repo.start_attempt("t1", who, f"leg-{who}", at(1)).assigned_to
        except TaskStateError:
            return None

    with ThreadPoolExecutor(4) as pool:
        winners = [w for w in pool.map(call, ["s1", "s2", "s3", "s4"]) if w]
    assert len(winners) == 1
    t = repo.get("t1")
    assert (t.attempts, t.assigned_to) == (1, winners[0])


def test_changes_made_with_an_actor_are_audited_once_and_the_chain_holds(db):
    repo = TaskRepository(db)
    task(repo, actor=SEC, note="secret note")
    repo.assign("t1", "sec", at(1), actor=SEC)
    repo.assign("t1", "sec", at(2), actor=SEC)  # a replay: no entry
    repo.start_attempt("t1", "sec", "leg-1", at(3))  # no actor: the controller's own step
    repo.done("t1", "out-1", "leg-1", at(4), actor=SEC)
    audit = AuditLog(db)
    entries = list(reversed(audit.query()))
    assert [(e.action, e.target, e.actor) for e in entries] == [
        ("task.create", "task:t1", "sec"), ("task.assign", "task:t1", "sec"),
        ("task.done", "task:t1", "sec")]
    assert json.loads(entries[1].before) == {"state": "open", "assigned_to": None}
    assert json.loads(entries[1].after) == {"state": "assigned", "assigned_to": "sec"}
    assert json.loads(entries[2].details) == {"call_id": "out-1", "leg": "leg-1"}
    assert json.loads(entries[0].details)["note_chars"] == len("secret note")
    assert all("+33612345678" not in (e.details or "") + (e.after or "") for e in entries)
    assert audit.verify().ok


def test_logs_never_show_the_number(db, caplog):
    repo = TaskRepository(db)
    with caplog.at_level(logging.DEBUG, logger="callrouter"):
        task(repo)
        repo.start_attempt("t1", "sec", "leg-1", at(1))
        repo.done("t1", "out-1", "leg-1", at(2))
    assert "task t1 created" in caplog.text
    assert "612345678" not in caplog.text and "12 34 56" not in caplog.text


def test_retention_purges_only_closed_tasks_older_than_the_cutoff(db):
    repo = TaskRepository(db)
    for name in ("done-old", "cancelled-old", "done-new", "open", "calling"):
        task(repo, name)
    task(repo, "expired-old", expires=60)
    repo.done("done-old", None, None, at(10))
    repo.cancel("cancelled-old", "sec", at(10))
    repo.expire_due(at(60))
    repo.done("done-new", None, None, at(100))
    repo.start_attempt("calling", "sec", "leg-1", at(1))
    with db.transaction() as s:
        assert purge_closed(s, at(61)) == 3
    assert sorted(t.id for t in repo.list(TaskQuery())) == ["calling", "done-new", "open"]
