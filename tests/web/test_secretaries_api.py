"""Secretaries' live states over real HTTP: she logs in, pauses and resumes herself; a supervisor
sees the team and manages it; every change audited. The controller is the real one (media faked)."""

import dataclasses
import json

import pytest
import pytest_twisted
from twisted.internet import reactor, threads

from callrouter.media import protocol as p
from callrouter.web.api import Api
from callrouter.store.tasks import TaskRepository
from callrouter.web.secretaries import SecretaryApi
from callrouter.web.tasks import TaskApi
from callrouter.web.site import build_site
from tests.controller.conftest import make_harness
from tests.controller.test_calls import queued_call
from tests.factories import examples
from web_support import MAX_BODY, Client

PHONE = "sip:accueil@192.0.2.10"


@pytest.fixture
def team(env, tmp_path):
    """The API of `env`, with a call controller whose queues hold `sec`, `extsec` and a fixed phone."""
    martin = examples()["cabinet-dr-martin"]  # as practice cab-a, which `sec` covers
    h, ctx = make_harness(tmp_path / "controller", secretaries={"*": ("sec", "extsec", PHONE)},
                          secretary_domain="edge:5060", login_required=True,
                          dialplans=[dataclasses.replace(martin, practice="cab-a")])
    h.desk.registrations_changed(frozenset({"sec", "extsec"}))
    h.desk.pause(PHONE, "poste fermé")  # the front-desk phone is off unless a test resumes it
    a = env.api
    in_reactor = lambda f, *args: threads.blockingCallFromThread(reactor, f, *args)  # noqa: E731
    api = Api(a.users, a.calls, a.audit, a.dialplans, a.token_ttl,
              secretary_states=SecretaryApi(a.audit, h.desk, in_reactor),
              tasks=TaskApi(a.audit, TaskRepository(env.db), users=a.users, calls=a.calls,
                            call_now=lambda view, who: in_reactor(h.controller.callbacks.call_now, view, who)))
    port = reactor.listenTCP(0, build_site(api.router(), reactor, reactor.getThreadPool(), reactor, MAX_BODY),
                             interface="127.0.0.1")
    try:
        yield h, Client(port.getHost().port)
    finally:
        pytest_twisted.blockon(port.stopListening())
        h.recorder.stop()
        ctx.__exit__(None, None, None)


@pytest_twisted.inlineCallbacks
def test_a_secretary_logs_in_through_the_api_and_then_gets_calls(env, team):
    h, client = team
    token = env.tokens["sec"]
    r = yield client.call("GET", "/api/secretaries/me", token=token)
    assert r.status == 200 and r.json()["state"] == "offline" and not r.json()["logged_in"]
    r = yield client.call("POST", "/api/secretaries/me/login", token=token)
    assert r.status == 200 and r.json()["state"] == "available"
    queued_call(h)
    assert h.media.last(p.Dial).uri == "sip:sec@edge:5060"
    [entry] = env.audit.query(action="secretary.login")
    assert entry.actor == "sec" and entry.target == "secretary:sec"


@pytest_twisted.inlineCallbacks
def test_pause_with_a_reason_then_resume(env, team):
    h, client = team
    token = env.tokens["sec"]
    yield client.call("POST", "/api/secretaries/me/login", token=token)
    r = yield client.call("POST", "/api/secretaries/me/pause", {"reason": "pause   déjeuner"}, token=token)
    assert r.status == 200 and (r.json()["state"], r.json()["paused"]) == ("paused", "pause déjeuner")
    leg = queued_call(h)
    assert not h.media.commands(p.Dial) and h.media.prompts(leg)[-1] == "callback_offer"
    r = yield client.call("POST", "/api/secretaries/me/resume", token=token)
    assert r.json()["state"] == "available"
    queued_call(h)
    assert h.media.last(p.Dial).uri == "sip:sec@edge:5060"
    assert [json.loads(e.details) for e in env.audit.query(action="secretary.pause")] == [{"reason": "pause déjeuner"}]


@pytest_twisted.inlineCallbacks
def test_a_supervisor_sees_the_team_and_resumes_a_fixed_phone(env, team):
    h, client = team
    r = yield client.call("GET", "/api/secretaries/states", token=env.tokens["super"])
    assert r.status == 200
    states = {s["id"]: s["state"] for s in r.json()["secretaries"]}
    assert states == {"sec": "offline", "extsec": "offline", PHONE: "paused"}
    r = yield client.call("POST", "/api/secretaries/sip%3Aaccueil%40192.0.2.10/resume", token=env.tokens["super"])
    assert r.status == 200 and r.json()["state"] == "available"
    r = yield client.call("POST", "/api/secretaries/sip%3Aaccueil%40192.0.2.10/logout", token=env.tokens["super"])
    assert r.status == 409 and "pause it instead" in r.json()["message"]


@pytest_twisted.inlineCallbacks
def test_a_secretary_cannot_manage_colleagues_and_strangers_are_not_secretaries(env, team):
    h, client = team
    r = yield client.call("POST", "/api/secretaries/extsec/pause", {}, token=env.tokens["sec"])
    assert r.status == 403
    r = yield client.call("POST", "/api/secretaries/me/login", token=env.tokens["doc"])
    assert r.status == 404 and "not a secretary" in r.json()["message"]
    r = yield client.call("POST", "/api/secretaries/nobody/resume", token=env.tokens["super"])
    assert r.status == 404
    assert not h.desk.secretary("extsec").paused


@pytest_twisted.inlineCallbacks
def test_her_console_reads_the_screen_pop_of_the_call_ringing_her(env, team):
    h, client = team
    token = env.tokens["sec"]
    yield client.call("POST", "/api/secretaries/me/login", token=token)
    r = yield client.call("GET", "/api/secretaries/me/call", token=token)
    assert r.status == 200 and r.json() == {"call": None}
    leg = queued_call(h, caller="+33612345678")
    r = yield client.call("GET", "/api/secretaries/me/call", token=token)
    pop = r.json()["call"]
    assert pop["call_id"] == h.call_id(leg) and pop["reason"] == "rendez-vous"
    assert pop["caller"]["number"] == "+33612345678" and pop["card"]["platform"] == "doctolib"
    assert pop == [m.payload for m in h.published.on("/screen-pop")][-1]  # the same as on MQTT
    h.answered(h.media.last(p.Dial).leg)
    h.ended(leg)
    h.clock.advance(60)
    r = yield client.call("GET", "/api/secretaries/me/call", token=token)
    assert r.json() == {"call": None}


@pytest_twisted.inlineCallbacks
def test_a_secretary_calls_a_task_back_from_her_console(env, team):
    h, client = team
    token = env.tokens["sec"]
    r = yield client.call("POST", "/api/practices/cab-a/tasks", {"number": "06 12 34 56 78"}, token=token)
    assert r.status == 201, r.body
    task = r.json()
    h.desk.registrations_changed(frozenset({"extsec"}))  # her softphone went off
    r = yield client.call("POST", f"/api/tasks/{task['id']}/call", token=token)
    assert r.status == 409 and "not registered" in r.json()["message"]
    h.desk.registrations_changed(frozenset({"sec", "extsec"}))
    r = yield client.call("POST", f"/api/tasks/{task['id']}/call", token=token)
    assert r.status == 200 and r.json()["calling"] == "sec"
    ring = h.media.last(p.Dial)
    assert ring.uri == "sip:sec@edge:5060" and ring.headers["X-Callrouter-Task-Id"] == task["id"]
    r = yield client.call("POST", f"/api/tasks/{task['id']}/call", {"secretary": "nobody"}, token=token)
    assert r.status == 404
