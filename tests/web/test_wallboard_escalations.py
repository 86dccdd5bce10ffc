"""Exhausted escalations taken in hand (POST /api/escalations/{id}/take) over real HTTP, on SQLite
and PostgreSQL: the first one wins, audited with before and after, shown in the API's view; the
chains the wallboard shows; and every committed change of a chain announced (what makes every
wallboard follow the steps and stop blinking at once)."""

from __future__ import annotations

import datetime as dt
import json

import pytest_twisted
from twisted.internet import reactor

from callrouter.store.escalations import EscalationRepository
from callrouter.web.api import Api
from callrouter.web.escalations import EscalationApi
from callrouter.web.site import build_site
from web_support import MAX_BODY, Client

T0 = dt.datetime(2027, 2, 1, 20, 0, tzinfo=dt.timezone.utc)


def serve(env, repo):
    a = env.api
    api = Api(a.users, a.calls, a.audit, a.dialplans, a.token_ttl, EscalationApi(a.audit, repo, None, "secret"))
    port = reactor.listenTCP(0, build_site(api.router(), reactor, reactor.getThreadPool(), reactor, MAX_BODY),
                             interface="127.0.0.1")
    return port, Client(port.getHost().port)


def exhausted_chain(repo, practice="cab-a"):
    view = repo.create(None, practice, "urgent", "+33612345678", T0)
    repo.claim_step(view.id, 0, 0, "sms", "dr-a", "+33600000001", T0)
    repo.mark_sent(view.id, 0, 0, "gw-1", T0 + dt.timedelta(seconds=1))
    assert repo.finish(view.id, "exhausted", T0 + dt.timedelta(minutes=10))
    return view.id


@pytest_twisted.inlineCallbacks
def test_the_first_supervisor_to_take_an_exhausted_chain_wins_and_it_is_audited(env):
    changes = []
    repo = EscalationRepository(env.db, on_change=lambda eid, practice: changes.append((eid, practice)))
    eid = exhausted_chain(repo)
    running = repo.create(None, "cab-a", "urgent", "+33612345678", T0)
    port, client = serve(env, repo)
    try:
        assert [c.id for c in repo.open_chains()] == [eid, running.id]
        del changes[:]
        r = yield client.call("POST", f"/api/escalations/{eid}/take", token=env.tokens["super"])
        assert r.status == 200, r.body
        view = r.json()["escalation"]
        assert r.json()["taken"] and view["taken_by"] == "super" and view["taken_at"]
        assert changes == [(eid, "cab-a")]
        r = yield client.call("POST", f"/api/escalations/{eid}/take", token=env.tokens["admin"])
        assert r.status == 409 and r.json()["message"] == f"Escalade {view['reference']} déjà prise en charge par super."
        r = yield client.call("POST", f"/api/escalations/{running.id}/take", token=env.tokens["super"])
        assert r.status == 409 and "n'est pas épuisée" in r.json()["message"]
        r = yield client.call("GET", f"/api/escalations/{eid}", token=env.tokens["super"])
        assert r.json()["taken_by"] == "super"
        [entry] = env.audit.query(action="escalation.take")
        assert (entry.actor, entry.target) == ("super", f"escalation:{eid}")
        assert json.loads(entry.before) == {"taken_by": None, "taken_at": None}
        assert json.loads(entry.after)["taken_by"] == "super"
        assert [c.id for c in repo.open_chains()] == [running.id]  # no longer asks for attention
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_taking_a_chain_of_a_practice_she_does_not_cover_is_no_such_chain(env):
    repo = EscalationRepository(env.db)
    eid = exhausted_chain(repo, practice="cab-b")
    port, client = serve(env, repo)
    try:
        r = yield client.call("POST", f"/api/escalations/{eid}/take", token=env.tokens["sec"])  # covers cab-a only
        assert r.status == 404
        r = yield client.call("POST", f"/api/escalations/{eid}/take", token=env.tokens["doc"])  # practitioner: read only
        assert r.status == 403
        assert repo.get(eid).taken_by is None
    finally:
        yield port.stopListening()


def test_every_committed_change_of_a_chain_is_announced_with_its_practice(db_env):
    changes = []
    repo = EscalationRepository(db_env, on_change=lambda eid, practice: changes.append((eid, practice)))
    view = repo.create(None, "cab-a", "urgent", "+33612345678", T0)
    repo.claim_step(view.id, 0, 0, "sms", "dr-a", "+33600000001", T0)
    assert not repo.claim_step(view.id, 0, 0, "sms", "dr-a", "+33600000001", T0)  # not claimed: nothing changed
    repo.mark_sent(view.id, 0, 0, "gw-1", T0)
    assert repo.mark_delivered("gw-1")
    assert not repo.mark_delivered("gw-unknown")
    repo.record_reply([view.id], T0, "+33*******01", {view.id: "dr-a"}, "webhook", "no", None, "declined")
    repo.claim_step(view.id, 0, 1, "call", "dr-b", "+33600000002", T0)
    repo.mark_failed(view.id, 0, 1, "busy", T0)
    repo.acknowledge(view.id, "dr-b", "sms", T0)
    assert not repo.acknowledge(view.id, "dr-c", "sms", T0).accepted  # refused: nothing changed
    assert not repo.finish(view.id, "exhausted", T0)
    assert changes == [(view.id, "cab-a")] * 8


def test_a_failing_listener_never_fails_the_write(db_env):
    def boom(eid, practice):
        raise RuntimeError("listener down")

    repo = EscalationRepository(db_env, on_change=boom)
    view = repo.create(None, "cab-a", "urgent", None, T0)
    assert repo.get(view.id).practice == "cab-a"
