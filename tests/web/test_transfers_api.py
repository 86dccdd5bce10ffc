"""A call handed to a colleague over real HTTP (callrouter.web.transfers): who may, the list of
colleagues, the French refusals. The controller is the real one (media faked)."""

import dataclasses
import json

import pytest
import pytest_twisted
from twisted.internet import reactor, threads

from callrouter.media import protocol as p
from callrouter.web.api import Api
from callrouter.web.site import build_site
from callrouter.web.secretaries import SecretaryApi
from tests.controller.conftest import make_harness
from tests.controller.test_calls import queued_call
from tests.factories import examples
from web_support import MAX_BODY, Client


@pytest.fixture
def desk(env, tmp_path):
    """`sec` answers a call of cab-a; `extsec` is free and covers it too."""
    martin = examples()["cabinet-dr-martin"]
    h, ctx = make_harness(tmp_path / "controller", secretaries={"*": ("sec", "extsec")},
                          secretary_domain="edge:5060", login_required=True,
                          dialplans=[dataclasses.replace(martin, practice="cab-a")])
    h.desk.registrations_changed(frozenset({"sec", "extsec"}))
    h.desk.login("sec")
    a = env.api
    in_reactor = lambda f, *args: threads.blockingCallFromThread(reactor, f, *args)  # noqa: E731
    api = Api(a.users, a.calls, a.audit, a.dialplans, a.token_ttl,
              secretary_states=SecretaryApi(a.audit, h.desk, in_reactor), call_transfers=h.controller.transfers)
    port = reactor.listenTCP(0, build_site(api.router(), reactor, reactor.getThreadPool(), reactor, MAX_BODY),
                             interface="127.0.0.1")
    leg = queued_call(h)
    h.answered(h.media.last(p.Dial).leg)
    h.desk.login("extsec")
    try:
        yield h, Client(port.getHost().port), h.call_id(leg)
    finally:
        pytest_twisted.blockon(port.stopListening())
        h.recorder.stop()
        ctx.__exit__(None, None, None)


@pytest_twisted.inlineCallbacks
def test_the_secretary_on_the_call_lists_her_colleagues_and_transfers_it(env, desk):
    h, client, call_id = desk
    r = yield client.call("GET", f"/api/calls/{call_id}/colleagues", token=env.tokens["sec"])
    assert r.status == 200
    assert [(c["id"], c["state"]) for c in r.json()["colleagues"]] == [("extsec", "available")]
    assert r.json()["colleagues"][0]["display_name"]
    r = yield client.call("POST", f"/api/calls/{call_id}/transfer", {"to": "extsec"}, token=env.tokens["sec"])
    assert r.status == 202, r.body
    assert (r.json()["state"], r.json()["from"], r.json()["to"]) == ("transferring", "sec", "extsec")
    assert h.media.last(p.Dial).uri == "sip:extsec@edge:5060"
    [entry] = env.audit.query(action="call.transfer")
    assert entry.actor == "sec" and json.loads(entry.details) == {"from": "sec", "to": "extsec"}
    r = yield client.call("POST", f"/api/calls/{call_id}/transfer", {"to": "extsec"}, token=env.tokens["sec"])
    assert r.status == 409 and "déjà en cours" in r.json()["message"]


@pytest_twisted.inlineCallbacks
def test_only_the_secretary_on_the_call_or_a_supervisor_may_transfer_it(env, desk):
    h, client, call_id = desk
    r = yield client.call("POST", f"/api/calls/{call_id}/transfer", {"to": "sec"}, token=env.tokens["extsec"])
    assert r.status == 403 and "superviseur" in r.json()["message"]
    r = yield client.call("POST", f"/api/calls/{call_id}/transfer", {"to": "extsec"}, token=env.tokens["super"])
    assert r.status == 202


@pytest_twisted.inlineCallbacks
def test_refusals_are_french_409_or_422(env, desk):
    h, client, call_id = desk
    token = env.tokens["sec"]
    r = yield client.call("POST", f"/api/calls/{call_id}/transfer", {"to": "sec"}, token=token)
    assert r.status == 422 and r.json()["error"] == "self"
    r = yield client.call("POST", f"/api/calls/{call_id}/transfer", {"to": "nobody"}, token=token)
    assert r.status == 422 and "Aucune secrétaire" in r.json()["message"]
    yield threads.deferToThread(lambda: None)
    h.desk.pause("extsec", "pause")
    r = yield client.call("POST", f"/api/calls/{call_id}/transfer", {"to": "extsec"}, token=token)
    assert r.status == 409 and "n'est pas disponible" in r.json()["message"]
    r = yield client.call("GET", f"/api/calls/{call_id}/colleagues", token=token)
    assert r.json()["colleagues"] == []
    r = yield client.call("POST", "/api/calls/gone/transfer", {"to": "extsec"}, token=env.tokens["super"])
    assert r.status == 404 and "terminé" in r.json()["message"]
    r = yield client.call("POST", f"/api/calls/{call_id}/transfer", {}, token=token)
    assert r.status == 400
