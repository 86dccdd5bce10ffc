"""Secretaries start escalation chains from the console, over real HTTP on loopback.

The engine runs on a Clock with fake channels; the API thread hands the start to the reactor
thread (`blockingCallFromThread`), as in the daemon.
"""

import datetime as dt
import json

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, threads

from callrouter.escalation.ack import Acknowledger
from callrouter.escalation.messages import compose
from callrouter.store.audit import AuditLog
from callrouter.store.calls import CallRepository
from callrouter.store.escalations import EscalationRepository
from callrouter.store.testing import KINDS, fresh_database
from callrouter.store.users import UserRepository
from callrouter.web.api import Api
from callrouter.web.escalations import EscalationApi
from tests.escalation.support import (
    SECRET, FakeChannel, clock_at, dialplan, http_request, listen, make_engine, sign_in,
)

NOTE = "douleur thoracique depuis 1 h"


class Env:
    pass


@pytest.fixture
def env(tmp_path):
    with fresh_database("sqlite", tmp_path) as db:
        e = Env()
        e.db, e.sms, e.email, e.clock = db, FakeChannel(), FakeChannel(), clock_at()
        plan = dialplan()
        e.engine, _ = make_engine(db, {"sms": e.sms, "email": e.email}, e.clock, plan)
        e.engine.startService()
        repo = EscalationRepository(db)
        acks = Acknowledger(repo, SECRET, lambda v: reactor.callFromThread(e.engine.acknowledged, v))
        users = UserRepository(db)
        t = dt.datetime.now(dt.timezone.utc)
        e.tokens = sign_in(users, t)
        calls = CallRepository(db)
        calls.open_call("call-1", "cab", "+33140000000", "+33612345678", t)
        calls.open_call("call-hidden", "cab", "+33140000000", None, t)
        calls.open_call("call-other", "other", "+33150000000", "+33698765432", t)

        def start_chain(*args):
            return threads.blockingCallFromThread(reactor, e.engine.start, *args)

        dialplans = {"cab": plan}
        api = Api(users, calls, AuditLog(db), None, dt.timedelta(hours=1),
                  EscalationApi(AuditLog(db), repo, acks, "hook", start_chain, dialplans.get, calls))
        port, e.port = listen(api)
        try:
            yield e
        finally:
            pytest_twisted.blockon(port.stopListening())


@defer.inlineCallbacks
def request(env, method, path, body=None, token=None):
    status, _, raw = yield http_request(env.port, method, path, body, token)
    return status, (json.loads(raw) if raw.strip() else None)


@pytest_twisted.inlineCallbacks
def test_a_secretary_escalates_a_call_like_the_ivr_would_with_her_note_in_the_email_only(env):
    status, body = yield request(env, "POST", "/api/calls/call-1/escalate", {"tier": "urgent", "note": NOTE},
                                 token=env.tokens["sec"])
    assert status == 201, body
    esc = body["escalation"]
    assert (esc["call_id"], esc["practice"], esc["tier"], esc["caller"]) == ("call-1", "cab", "urgent", "+33612345678")
    assert (esc["triggered_by"], esc["note"]) == ("user:sec", NOTE)
    yield env.engine.settled(esc["id"])
    [sms] = env.sms.sent
    [mail] = env.email.sent
    assert sms.to == "+33611111111" and "06 12 34 56 78" in sms.text
    assert NOTE not in sms.text and "douleur" not in sms.text  # minimum health information by SMS
    assert f"Note du secrétariat : {NOTE}" in mail.text
    view = EscalationRepository(env.db).get(esc["id"])
    assert (view.triggered_by, view.note) == ("user:sec", NOTE)
    [entry] = AuditLog(env.db).query(action="escalation.start")
    assert entry.actor == "sec" and entry.target == f"escalation:{esc['id']}"
    assert NOTE not in json.dumps(entry.details)  # the audit log keeps the fact, not the note


@pytest_twisted.inlineCallbacks
def test_the_tier_must_exist_in_the_practice_dialplan(env):
    status, body = yield request(env, "POST", "/api/calls/call-1/escalate", {"tier": "vital"},
                                 token=env.tokens["sec"])
    assert status == 422 and "tiers: urgent" in body["message"]
    assert EscalationRepository(env.db).active() == [] and env.sms.sent == []


@pytest_twisted.inlineCallbacks
def test_permissions_and_practice_scope(env):
    status, _ = yield request(env, "POST", "/api/calls/call-1/escalate", {"tier": "urgent"}, token=env.tokens["doc"])
    assert status == 403  # practitioners read escalations, they do not start them
    status, _ = yield request(env, "POST", "/api/calls/call-1/escalate", {"tier": "urgent"},
                              token=env.tokens["othersec"])
    assert status == 404  # another practice's call is not revealed
    status, _ = yield request(env, "POST", "/api/calls/call-other/escalate", {"tier": "urgent"},
                              token=env.tokens["sec"])
    assert status == 404
    status, _ = yield request(env, "POST", "/api/calls/call-1/escalate", {"tier": "urgent"})
    assert status == 401
    status, _ = yield request(env, "POST", "/api/escalations",
                              {"practice": "other", "tier": "urgent", "callback_number": "0612345678"},
                              token=env.tokens["sec"])
    assert status == 403
    assert EscalationRepository(env.db).active() == []


@pytest_twisted.inlineCallbacks
def test_the_note_is_length_limited_and_unknown_fields_are_refused(env):
    status, body = yield request(env, "POST", "/api/calls/call-1/escalate", {"tier": "urgent", "note": "x" * 281},
                                 token=env.tokens["sec"])
    assert status == 400 and "longer than 280" in body["message"]
    status, body = yield request(env, "POST", "/api/calls/call-1/escalate", {"tier": "urgent", "diagnosis": "x"},
                                 token=env.tokens["sec"])
    assert status == 400 and "unknown field" in body["message"]


@pytest_twisted.inlineCallbacks
def test_a_hidden_caller_needs_a_callback_number(env):
    status, body = yield request(env, "POST", "/api/calls/call-hidden/escalate", {"tier": "urgent"},
                                 token=env.tokens["sec"])
    assert status == 422 and "callback_number" in body["message"]
    status, body = yield request(env, "POST", "/api/calls/call-hidden/escalate",
                                 {"tier": "urgent", "callback_number": "06 98 76 54 32"}, token=env.tokens["sec"])
    assert status == 201 and body["escalation"]["caller"] == "+33698765432"


@pytest_twisted.inlineCallbacks
def test_an_escalation_without_a_call(env):
    status, body = yield request(env, "POST", "/api/escalations",
                                 {"practice": "cab", "tier": "urgent", "callback_number": "not a number"},
                                 token=env.tokens["sec"])
    assert status == 400 and "callback_number" in body["message"]
    status, body = yield request(env, "POST", "/api/escalations",
                                 {"practice": "cab", "tier": "urgent", "callback_number": "06.12.34.56.78"},
                                 token=env.tokens["super"])
    assert status == 201
    esc = body["escalation"]
    assert (esc["call_id"], esc["caller"], esc["triggered_by"], esc["note"]) == \
        (None, "+33612345678", "user:super", None)
    yield env.engine.settled(esc["id"])
    assert len(env.sms.sent) == 1 and "Note du secrétariat" not in env.email.sent[0].text
    status, body = yield request(env, "POST", "/api/escalations",
                                 {"practice": "nowhere", "tier": "urgent", "callback_number": "0612345678"},
                                 token=env.tokens["super"])
    assert status == 404


@pytest_twisted.inlineCallbacks
def test_the_acknowledgement_link_still_stops_a_console_chain(env):
    status, body = yield request(env, "POST", "/api/calls/call-1/escalate", {"tier": "urgent"},
                                 token=env.tokens["sec"])
    eid = body["escalation"]["id"]
    yield env.engine.settled(eid)
    status, body = yield request(env, "POST", f"/api/escalations/{eid}/ack", token=env.tokens["sec"])
    assert status == 200 and body["accepted"] is True
    env.clock.advance(3600)
    yield env.engine.settled(eid)
    assert len(env.sms.sent) == 1


def test_compose_never_puts_the_note_in_an_sms():
    sms = compose("sms", "+33611111111", "k", "urgent", "Cab", "+33612345678", "https://x/ack/t", note=NOTE)
    mail = compose("email", "a@b", "k", "urgent", "Cab", "+33612345678", "https://x/ack/t", note="a\n  b")
    assert NOTE not in sms.text and "Note du secrétariat : a b" in mail.text


@pytest.mark.parametrize("kind", KINDS)
def test_the_store_keeps_who_started_a_chain_and_the_note(kind, tmp_path):
    with fresh_database(kind, tmp_path) as db:
        repo = EscalationRepository(db)
        now = dt.datetime(2026, 11, 23, 21, 0, tzinfo=dt.timezone.utc)
        created = repo.create(None, "cab", "urgent", "+33612345678", now, "v1", "user:sec", NOTE)
        ivr = repo.create("call-9", "cab", "urgent", None, now)
        assert (repo.get(created.id).triggered_by, repo.get(created.id).note) == ("user:sec", NOTE)
        assert (repo.get(ivr.id).triggered_by, repo.get(ivr.id).note) == (None, None)
