"""Callback tasks over real HTTP: created by a secretary, listed in line order, taken, done,
cancelled; scoped to the practices she covers; every change audited; bad input and refused
transitions answered with their reason."""

import datetime as dt
import json
import logging

import pytest
import pytest_twisted
from twisted.internet import reactor

from callrouter.store.audit import SYSTEM
from callrouter.store.tasks import TaskRepository
from callrouter.web.api import Api
from callrouter.web.site import build_site
from callrouter.web.tasks import TaskApi
from web_support import MAX_BODY, Client, now

NUMBER = "+33612345678"


class Tasks:
    def __init__(self, env, client, api, created, told):
        self.env, self.client, self.api, self.created, self.told = env, client, api, created, told
        self.repo = api.repo

    def call(self, method, path, body=None, who="sec"):
        return self.client.call(method, path, body, token=self.env.tokens[who])

    def seed(self, task_id, practice="cab-a", minutes_ago=10, expires_in=240, **kw):
        t = now()
        return self.repo.create(practice, "06 12 34 56 78", kw.pop("source", "overflow"), t,
                                t + dt.timedelta(minutes=expires_in), task_id=task_id,
                                place_at=t - dt.timedelta(minutes=minutes_ago), **kw)


@pytest.fixture
def tasks(env):
    """The API of `env` with the task routes wired in; `created` collects what on_created got."""
    repo = TaskRepository(env.db)
    created = []
    told = {"hook": created.append}  # what the controller's on_created does; a test may swap it
    a = env.api
    task_api = TaskApi(env.audit, repo, lambda view: told["hook"](view), users=env.users, calls=env.calls,
                       known_practice=lambda p: p in ("cab-a", "cab-b"))
    api = Api(a.users, a.calls, a.audit, a.dialplans, a.token_ttl, tasks=task_api)
    port = reactor.listenTCP(0, build_site(api.router(), reactor, reactor.getThreadPool(), reactor, MAX_BODY),
                             interface="127.0.0.1")
    try:
        yield Tasks(env, Client(port.getHost().port), task_api, created, told)
    finally:
        pytest_twisted.blockon(port.stopListening())


@pytest_twisted.inlineCallbacks
def test_a_secretary_creates_a_task_which_the_controller_is_told_of(env, tasks, caplog):
    before = now()
    with caplog.at_level(logging.INFO, logger="callrouter"):
        r = yield tasks.call("POST", "/api/practices/cab-a/tasks",
                             {"number": "06 12 34 56 78", "note": "résultats  d'analyse"})
    assert r.status == 201, r.body
    t = r.json()
    assert (t["practice"], t["number"], t["source"], t["state"], t["created_by"], t["note"]) == \
        ("cab-a", NUMBER, "secretary", "open", "sec", "résultats d'analyse")
    expires = dt.datetime.fromisoformat(t["expires_at"]) - dt.datetime.fromisoformat(t["created_at"])
    assert expires == dt.timedelta(minutes=240)
    assert dt.datetime.fromisoformat(t["place_at"]) >= before - dt.timedelta(seconds=1)
    assert [c.id for c in tasks.created] == [t["id"]]
    assert tasks.repo.get(t["id"]).number == NUMBER
    [entry] = env.audit.query(action="task.create")
    assert (entry.actor, entry.target, entry.source) == ("sec", f"task:{t['id']}", "127.0.0.1")
    assert "612345678" not in caplog.text


@pytest_twisted.inlineCallbacks
def test_the_deadline_can_be_chosen(tasks):
    r = yield tasks.call("POST", "/api/practices/cab-a/tasks", {"number": NUMBER, "expires_in_minutes": 30})
    t = r.json()
    assert dt.datetime.fromisoformat(t["expires_at"]) - dt.datetime.fromisoformat(t["created_at"]) == \
        dt.timedelta(minutes=30)


@pytest.mark.parametrize("body, message", [
    ({"number": "0892123456"}, "premium-rate"),
    ({"number": "15"}, "short numbers"),
    ({"number": "+44 20 7946 0958"}, "only French numbers"),
    ({"number": "call me"}, "not a phone number"),
    ({"number": NUMBER, "expires_in_minutes": 0}, "between 1 and 10080"),
    ({"number": NUMBER, "expires_in_minutes": "soon"}, "must be an integer"),
    ({"number": NUMBER, "priority": "high"}, "unknown field(s): priority"),
    ({"note": "x"}, "field 'number' is required"),
])
@pytest_twisted.inlineCallbacks
def test_bad_input_is_a_400_with_its_reason_and_stores_nothing(env, tasks, body, message):
    r = yield tasks.call("POST", "/api/practices/cab-a/tasks", body)
    assert r.status == 400 and r.json()["error"] == "invalid_body"
    assert message in r.json()["message"]
    r = yield tasks.call("GET", "/api/practices/cab-a/tasks?state=open,assigned,calling,done,expired,cancelled")
    assert r.json()["tasks"] == [] and tasks.created == []
    assert env.audit.query(action="task.create") == []


@pytest_twisted.inlineCallbacks
def test_the_list_is_in_line_order_scoped_and_audited(env, tasks):
    tasks.seed("late", minutes_ago=5)
    tasks.seed("early", minutes_ago=20)
    tasks.seed("other", practice="cab-b")
    tasks.seed("gone", minutes_ago=30)
    tasks.repo.cancel("gone", "sec", now())
    r = yield tasks.call("GET", "/api/practices/cab-a/tasks")
    assert r.status == 200 and [t["id"] for t in r.json()["tasks"]] == ["early", "late"]
    r = yield tasks.call("GET", "/api/practices/cab-a/tasks?state=cancelled,open&limit=2")
    assert [t["id"] for t in r.json()["tasks"]] == ["gone", "early"]
    r = yield tasks.call("GET", "/api/practices/cab-a/tasks?state=lost")
    assert r.status == 400 and "unknown state(s) 'lost'" in r.json()["message"]
    reads = env.audit.query(action="tasks.read")
    assert [json.loads(e.details)["records"] for e in reversed(reads)] == [2, 2]
    assert json.loads(reads[0].details)["filters"] == {"practice": "cab-a", "state": ["cancelled", "open"],
                                                       "limit": 2}


@pytest_twisted.inlineCallbacks
def test_users_see_and_change_only_the_practices_they_cover(tasks):
    tasks.seed("a1")
    tasks.seed("b1", practice="cab-b")
    r = yield tasks.call("GET", "/api/practices/cab-b/tasks")
    assert r.status == 403 and r.json()["reason"] == "practice not covered by this user"
    r = yield tasks.call("POST", "/api/practices/cab-b/tasks", {"number": NUMBER})
    assert r.status == 403
    for path in ("/api/tasks/b1", "/api/tasks/nope"):
        r = yield tasks.call("GET", path)
        assert r.status == 404 and r.json()["message"] == "no such task"
    r = yield tasks.call("POST", "/api/tasks/b1/cancel", {})
    assert r.status == 404 and tasks.repo.get("b1").state == "open"
    # an external secretary covering both, a supervisor and an admin see both practices
    for who in ("extsec", "super", "admin"):
        r = yield tasks.call("GET", "/api/tasks/b1", who=who)
        assert r.status == 200, who
    # a practitioner reads her practice's tasks but may not change them
    r = yield tasks.call("GET", "/api/practices/cab-b/tasks", who="doc")
    assert [t["id"] for t in r.json()["tasks"]] == ["b1"]
    r = yield tasks.call("POST", "/api/tasks/b1/assign", who="doc")
    assert r.status == 403 and r.json()["reason"] == "role practitioner may not write callbacks"
    r = yield tasks.call("POST", "/api/practices/cab-z/tasks", {"number": NUMBER}, who="admin")
    assert r.status == 404


@pytest_twisted.inlineCallbacks
def test_a_task_is_taken_then_done_with_the_call_that_reached_the_patient(env, tasks):
    tasks.seed("t1")
    env.calls.open_call("out-1", "cab-a", "+33142000001", NUMBER, now())
    r = yield tasks.call("POST", "/api/tasks/t1/assign")  # no body: to me
    assert r.status == 200 and (r.json()["state"], r.json()["assigned_to"]) == ("assigned", "sec")
    r = yield tasks.call("POST", "/api/tasks/t1/done", {"call_id": "out-1"})
    assert r.status == 200
    assert (r.json()["state"], r.json()["done_call_id"]) == ("done", "out-1")
    r = yield tasks.call("POST", "/api/tasks/t1/done", {"call_id": "out-1"})  # a double click
    assert r.status == 200
    assert [e.action for e in reversed(env.audit.query()) if e.action.startswith("task.")] == \
        ["task.assign", "task.done"]
    [done] = env.audit.query(action="task.done")
    assert json.loads(done.before)["state"] == "assigned" and json.loads(done.details) == {"call_id": "out-1"}


@pytest_twisted.inlineCallbacks
def test_assigning_to_someone_else_checks_she_may_take_it(tasks):
    tasks.seed("t1")
    r = yield tasks.call("POST", "/api/tasks/t1/assign", {"to": "extsec"})
    assert r.status == 200 and r.json()["assigned_to"] == "extsec"
    for who, reason in (("doc", "role practitioner may not write callbacks"),
                        ("ghost", "unknown user")):
        r = yield tasks.call("POST", "/api/tasks/t1/assign", {"to": who})
        assert r.status == 422 and r.json()["reason"] == reason
    tasks.seed("b1", practice="cab-b")
    r = yield tasks.call("POST", "/api/tasks/b1/assign", {"to": "sec"}, who="super")
    assert r.status == 422 and r.json()["reason"] == "practice not covered by the assignee"
    r = yield tasks.call("POST", "/api/tasks/t1/assign", {"to": "sip:accueil@192.0.2.10"})
    assert r.status == 200 and r.json()["assigned_to"] == "sip:accueil@192.0.2.10"
    r = yield tasks.call("POST", "/api/tasks/t1/assign", {"to": "sip:nowhere"})
    assert r.status == 400
    assert tasks.repo.get("t1").assigned_to == "sip:accueil@192.0.2.10"


@pytest_twisted.inlineCallbacks
def test_refused_transitions_are_a_409_with_the_reason(env, tasks):
    tasks.seed("calling")
    tasks.repo.start_attempt("calling", "extsec", "leg-1", now())
    r = yield tasks.call("POST", "/api/tasks/calling/cancel", {"reason": "doublon"})
    assert r.status == 409 and r.json()["state"] == "calling"
    assert "wait for the call to end" in r.json()["reason"]
    r = yield tasks.call("POST", "/api/tasks/calling/assign")
    assert r.status == 409 and "being called" in r.json()["message"]
    tasks.seed("old", expires_in=1)
    tasks.repo.expire_due(now() + dt.timedelta(minutes=2), actor=SYSTEM)
    r = yield tasks.call("POST", "/api/tasks/old/done")
    assert r.status == 409 and r.json()["reason"] == "cannot complete task old: it is expired"
    assert env.audit.query(action="task.done") == []


@pytest_twisted.inlineCallbacks
def test_cancel_keeps_who_and_why(env, tasks):
    tasks.seed("t1")
    r = yield tasks.call("POST", "/api/tasks/t1/cancel", {"reason": "patient venu au cabinet"})
    assert r.status == 200
    assert (r.json()["state"], r.json()["cancelled_by"], r.json()["cancel_reason"]) == \
        ("cancelled", "sec", "patient venu au cabinet")
    [entry] = env.audit.query(action="task.cancel")
    assert json.loads(entry.details) == {"reason": "patient venu au cabinet"}
    r = yield tasks.call("POST", "/api/tasks/t1/done")
    assert r.status == 409


@pytest_twisted.inlineCallbacks
def test_done_with_another_practices_call_is_refused(env, tasks):
    tasks.seed("t1")
    env.calls.open_call("b-call", "cab-b", "+33142000002", NUMBER, now())
    for call_id in ("b-call", "missing"):
        r = yield tasks.call("POST", "/api/tasks/t1/done", {"call_id": call_id})
        assert r.status == 422 and r.json()["reason"] == "unknown call"
    assert tasks.repo.get("t1").state == "open"


@pytest_twisted.inlineCallbacks
def test_a_failing_controller_hook_does_not_lose_the_task(tasks, caplog):
    def broken(view):
        raise RuntimeError("controller gone")

    tasks.told["hook"] = broken
    r = yield tasks.call("POST", "/api/practices/cab-a/tasks", {"number": NUMBER})
    assert r.status == 201
    assert [t.id for t in tasks.repo.pending(now())] == [r.json()["id"]]
    assert "was not told" in caplog.text and "612345678" not in caplog.text


@pytest_twisted.inlineCallbacks
def test_without_tasks_wired_in_the_routes_answer_503(env):
    r = yield env.client.call("GET", "/api/practices/cab-a/tasks", token=env.tokens["sec"])
    assert r.status == 503 and r.json()["error"] == "unavailable"


@pytest_twisted.inlineCallbacks
def test_admin_service_serves_the_task_routes_and_checks_assignees_with_the_users_store(env):
    from callrouter.config import HttpSettings
    from callrouter.web.service import admin_service

    tasks = TaskApi(env.audit, TaskRepository(env.db), users=env.users, calls=env.calls)
    api = Api(env.users, env.calls, env.audit, env.dialplans, dt.timedelta(hours=1), tasks=tasks)
    service = admin_service(HttpSettings(host="127.0.0.1", port=0), api, reactor)
    service.startService()
    try:
        client = Client(service.getServiceNamed("admin-http")._port.getHost().port)
        r = yield client.call("POST", "/api/practices/cab-a/tasks", {"number": NUMBER}, token=env.tokens["sec"])
        assert r.status == 201
        r = yield client.call("POST", f"/api/tasks/{r.json()['id']}/assign", {"to": "doc"}, token=env.tokens["sec"])
        assert r.status == 422 and r.json()["reason"] == "role practitioner may not write callbacks"
    finally:
        yield service.stopService()
