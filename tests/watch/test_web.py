"""The watch's API through the real router, users and store (SQLite and PostgreSQL): each user sees
the practices she covers, supervisors start a test and take a failure in hand (audited), a refusal
is a 409 in French, and the routes exist (503) on a server without the watch."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from argon2 import PasswordHasher

from callrouter.auth import passwords
from callrouter.auth.totp import code_at
from callrouter.domain.watch_views import FAILED, PASSED, SCHEDULE, WatchRefused
from callrouter.store.audit import Actor, AuditLog
from callrouter.store.users import UserRepository
from callrouter.store.watch import WatchRepository
from callrouter.web.http import HttpRequest
from callrouter.web.router import Router
from callrouter.web.watch import WatchApi, watch_routes
from tests.factories import dialplan_text, load_one

NOW = dt.datetime(2026, 6, 1, 1, 0, tzinfo=dt.timezone.utc)
PASSWORD = "a long enough password"
WATCH = 'watch:\n  forwarding: always\n  at: ["03:10"]\n'
DAY = (NOW - dt.timedelta(hours=3), NOW + dt.timedelta(hours=21))


@pytest.fixture
def env(db, tmp_path, monkeypatch):
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    users = UserRepository(db)
    tokens = {}
    for name, role, practices in (("super", "supervisor", ()), ("sec", "secretary", ("cab-a",))):
        new = users.add(Actor("root", "cli"), name, name.title(), role, PASSWORD, NOW, practices=practices)
        tokens[name], _ = users.login(name, PASSWORD, code_at(new.totp_secret, NOW), NOW, "127.0.0.1",
                                      dt.timedelta(hours=1))
    dialplans = {p: load_one(tmp_path, dialplan_text(practice=p, number=n, extra=WATCH), f"{p}.yaml")
                 for p, n in (("cab-a", "+33100000001"), ("cab-b", "+33100000002"))}
    store = WatchRepository(db)
    asked = []

    def run_now(practice, number, by):
        asked.append((practice, number, by))
        if number == "+33100000099":
            raise WatchRefused("ce numéro n'est pas surveillé pour ce cabinet")
        return store.start_run(f"{practice}|asked|{len(asked)}", practice, "+33100000001", "+33100000001",
                               "+33180000100", "tok", by, NOW, NOW, DAY, 8)

    api = WatchApi(store, lambda: dialplans, run_now, lambda: [], lambda d: 4, enabled=True)
    router = Router(watch_routes(api), users.authenticate)

    def call(method, path, who, body=None, query=None):
        request = HttpRequest(method, path, query or {}, {"authorization": f"Bearer {tokens[who]}",
                                                          "content-type": "application/json"},
                              json.dumps(body).encode() if body is not None else b"", "127.0.0.1", NOW)
        response = router.handle(request)
        return response.status, json.loads(response.body)

    def failed_run(practice, number, key):
        run = store.start_run(key, practice, number, number, "+33180000100", "tok", SCHEDULE, NOW, NOW, DAY, 8)
        return store.finish(run.id, FAILED, "busy", NOW, alerts=[("sms", "+33612345678")])

    return call, store, failed_run, asked, db


def test_each_user_sees_the_watch_of_the_practices_she_covers(env):
    call, store, failed_run, _, _ = env
    run = failed_run("cab-a", "+33100000001", "k1")
    failed_run("cab-b", "+33100000002", "k2")
    status, body = call("GET", "/api/watch", "super")
    assert status == 200 and body["enabled"] is True
    assert [p["practice"] for p in body["practices"]] == ["cab-a", "cab-b"]
    cab_a = body["practices"][0]
    assert cab_a["forwarding"] == "always"
    assert cab_a["numbers"] == [{"number": "+33100000001", "returns_on": "+33100000001", "site": None,
                                 "failing": True, "last": cab_a["alarms"][0]}]
    alarm = cab_a["alarms"][0]
    assert (alarm["id"], alarm["outcome"], alarm["outcome_label"], alarm["alarm"]) == (run.id, "busy",
                                                                                        "ligne occupée", True)
    assert alarm["alerts"] == [{"channel": "sms", "state": "pending", "sent_at": None}]  # no contact shown
    # The next tests: tonight's slot (03:10-03:25 in Paris), then the next nights'.
    assert [n["number"] for n in cab_a["next"]] == ["+33100000001"] * 3
    assert "2026-06-01T01:10:00+00:00" <= cab_a["next"][0]["at"] < "2026-06-01T01:25:00+00:00"
    status, body = call("GET", "/api/watch", "sec")
    assert [p["practice"] for p in body["practices"]] == ["cab-a"]


def test_a_practice_s_history_newest_first_and_only_for_who_covers_it(env):
    call, store, failed_run, _, _ = env
    first = failed_run("cab-a", "+33100000001", "k1")
    second = store.start_run("k2", "cab-a", "+33100000001", "+33100000001", "+33180000100", "t", SCHEDULE, NOW,
                             NOW + dt.timedelta(hours=1), DAY, 8)
    store.finish(second.id, PASSED, "passed", NOW + dt.timedelta(hours=1), rtt_ms=1800)
    status, body = call("GET", "/api/practices/cab-a/watch", "sec", query={"limit": ("10",)})
    assert status == 200 and [(r["id"], r["state"], r["rtt_ms"]) for r in body["runs"]] == [
        (second.id, "passed", 1800), (first.id, "failed", None)]
    assert call("GET", "/api/practices/cab-b/watch", "sec")[0] == 404
    assert call("GET", "/api/practices/nowhere/watch", "super")[0] == 404
    assert (body["name"], body["timezone"]) == ("Cabinet de test", "Europe/Paris")
    # The last days only: a run from two weeks ago is left out of a week's history.
    old = store.start_run("k0", "cab-a", "+33100000002", "+33100000002", "+33180000100", "t", SCHEDULE, NOW,
                          NOW - dt.timedelta(days=14), (NOW - dt.timedelta(days=15), NOW), 8)
    store.finish(old.id, PASSED, "passed", NOW - dt.timedelta(days=14), rtt_ms=2100)
    assert len(call("GET", "/api/practices/cab-a/watch", "sec")[1]["runs"]) == 3
    status, body = call("GET", "/api/practices/cab-a/watch", "sec", query={"days": ("7",)})
    assert status == 200 and [r["id"] for r in body["runs"]] == [second.id, first.id]
    assert call("GET", "/api/practices/cab-a/watch", "sec", query={"days": ("0",)})[0] == 400


def test_a_supervisor_starts_a_test_now_a_secretary_may_not(env):
    call, _, _, asked, _ = env
    status, body = call("POST", "/api/practices/cab-a/watch/run", "super", body={})
    assert status == 202 and (body["state"], body["trigger"]) == ("calling", "super")
    assert asked == [("cab-a", None, "super")]
    status, body = call("POST", "/api/practices/cab-a/watch/run", "super", body={"number": "+33100000099"})
    assert (status, body["message"]) == (409, "ce numéro n'est pas surveillé pour ce cabinet")
    status, body = call("POST", "/api/practices/cab-a/watch/run", "sec", body={})
    assert status == 403 and len(asked) == 2


def test_a_supervisor_takes_a_failure_in_hand_audited(env):
    call, store, failed_run, _, db = env
    run = failed_run("cab-a", "+33100000001", "k1")
    assert call("POST", f"/api/watch/{run.id}/acknowledge", "sec")[0] == 403
    status, body = call("POST", f"/api/watch/{run.id}/acknowledge", "super")
    assert status == 200 and (body["alarm"], body["acknowledged_by"]) == (False, "super")
    assert [e.actor for e in AuditLog(db).query() if e.action == "watch.acknowledge"] == ["super"]
    assert call("GET", "/api/watch", "super")[1]["practices"][0]["alarms"] == []
    assert call("POST", "/api/watch/4242/acknowledge", "super")[0] == 404
    passed = store.start_run("k2", "cab-b", "+33100000002", "+33100000002", "+33180000100", "t", SCHEDULE, NOW,
                             NOW, DAY, 8)
    store.finish(passed.id, PASSED, "passed", NOW)
    status, body = call("POST", f"/api/watch/{passed.id}/acknowledge", "super")
    assert status == 409 and "échec" in body["message"]


def test_the_routes_answer_503_on_a_server_without_the_watch(env):
    routes = watch_routes(None)
    assert [(r.method, r.pattern) for r in routes] == [
        ("GET", "/api/watch"), ("GET", "/api/practices/{practice}/watch"),
        ("POST", "/api/practices/{practice}/watch/run"), ("POST", "/api/watch/{run_id}/acknowledge")]
