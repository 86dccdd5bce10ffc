"""Acknowledgement over real HTTP: the admin site on loopback, the engine on a Clock, SQLite."""

import datetime as dt
import json

import pytest
import pytest_twisted
from twisted.internet import reactor

from callrouter.escalation.ack import Acknowledger
from callrouter.store.audit import AuditLog
from callrouter.store.calls import CallRepository
from callrouter.store.escalations import EscalationRepository
from callrouter.store.testing import fresh_database
from callrouter.store.users import UserRepository
from callrouter.web.api import Api
from callrouter.web.escalations import EscalationApi
from tests.escalation.support import (
    SECRET, FakeChannel, clock_at, dialplan, http_request, listen, make_engine, sign_in,
)

WEBHOOK = "hook-secret"


class Env:
    pass


@pytest.fixture
def env(tmp_path):
    with fresh_database("sqlite", tmp_path) as db:
        e = Env()
        e.db, e.sms, e.email, e.clock = db, FakeChannel(), FakeChannel(), clock_at()
        e.engine, _ = make_engine(db, {"sms": e.sms, "email": e.email}, e.clock)
        e.engine.startService()
        repo = EscalationRepository(db)
        acks = Acknowledger(repo, SECRET, lambda v: reactor.callFromThread(e.engine.acknowledged, v))
        users = UserRepository(db)
        t = dt.datetime.now(dt.timezone.utc)
        e.tokens = sign_in(users, t)
        api = Api(users, CallRepository(db), AuditLog(db), None, dt.timedelta(hours=1),
                  EscalationApi(AuditLog(db), repo, acks, WEBHOOK))
        port, e.port = listen(api)
        results = []
        e.engine.start("call-1", dialplan(), "urgent", "+33612345678").addCallback(results.append)
        e.eid = results[0]
        e.token = e.sms.sent[0].text.rsplit("/ack/", 1)[1]
        try:
            yield e
        finally:
            pytest_twisted.blockon(port.stopListening())


def request(env, method, path, body=None, token=None, headers=None):
    return http_request(env.port, method, path, body, token, headers)


@pytest_twisted.inlineCallbacks
def test_the_link_page_does_not_acknowledge_its_button_does_and_the_chain_stops(env):
    status, ctype, body = yield request(env, "GET", f"/ack/{env.token}")
    assert status == 200 and ctype.startswith("text/html")
    assert "J'accuse réception" in body.decode() and f'action="/ack/{env.token}"' in body.decode()
    assert EscalationRepository(env.db).get(env.eid).acknowledged_at is None
    status, _, body = yield request(env, "POST", f"/ack/{env.token}")
    assert status == 200 and "Accusé de réception enregistré" in body.decode()
    status, _, body = yield request(env, "POST", f"/ack/{env.token}")
    assert "Déjà pris en charge" in body.decode()
    env.clock.advance(3600)
    yield env.engine.settled(env.eid)
    assert len(env.sms.sent) == 1
    view = EscalationRepository(env.db).get(env.eid)
    assert (view.outcome, view.acknowledged_by, view.acknowledged_via) == ("acknowledged", "dr-martin", "link")


@pytest_twisted.inlineCallbacks
def test_a_forged_link_is_refused(env):
    status, _, body = yield request(env, "POST", f"/ack/{env.eid}-0-0-{'a' * 32}")
    assert status == 404 and "Lien invalide" in body.decode()


@pytest_twisted.inlineCallbacks
def test_the_inbound_sms_webhook_needs_its_secret_and_acknowledges_a_reply(env):
    status, _, _ = yield request(env, "POST", "/api/escalations/inbound-sms", {"from": "+33611111111", "text": "ok"},
                                 headers={"X-Webhook-Secret": "wrong"})
    assert status == 403
    status, _, body = yield request(env, "POST", "/api/escalations/inbound-sms",
                                    {"from": "+33611111111", "text": "OK je rappelle"},
                                    headers={"X-Webhook-Secret": WEBHOOK})
    assert status == 200 and json.loads(body) == {"acknowledged": False, "escalation_id": env.eid,
                                                  "escalation_ids": [env.eid], "understood": "unclear",
                                                  "action": "explained"}
    assert EscalationRepository(env.db).get(env.eid).acknowledged_at is None
    status, _, body = yield request(env, "POST", "/api/escalations/inbound-sms",
                                    {"from": "+33611111111", "text": "ok"}, headers={"X-Webhook-Secret": WEBHOOK})
    assert status == 200 and json.loads(body)["acknowledged"] is True
    assert EscalationRepository(env.db).get(env.eid).acknowledged_via == "sms"


@pytest_twisted.inlineCallbacks
def test_api_ack_checks_permission_and_practice(env):
    status, _, _ = yield request(env, "POST", f"/api/escalations/{env.eid}/ack", token=env.tokens["doc"])
    assert status == 403  # practitioners may read escalations, not write them
    status, _, _ = yield request(env, "POST", f"/api/escalations/{env.eid}/ack", token=env.tokens["othersec"])
    assert status == 404  # another practice's chain is not revealed
    status, _, body = yield request(env, "POST", f"/api/escalations/{env.eid}/ack", token=env.tokens["sec"])
    assert status == 200 and json.loads(body)["accepted"] is True
    assert json.loads(body)["escalation"]["acknowledged_by"] == "user:sec"
    assert [e.action for e in AuditLog(env.db).query(action="escalation.ack")] == ["escalation.ack"]


@pytest_twisted.inlineCallbacks
def test_list_export_and_report(env):
    status, _, body = yield request(env, "GET", "/api/escalations", token=env.tokens["sec"])
    assert status == 200 and [e["id"] for e in json.loads(body)["escalations"]] == [env.eid]
    status, _, body = yield request(env, "GET", "/api/escalations", token=env.tokens["othersec"])
    assert json.loads(body)["escalations"] == []
    status, _, _ = yield request(env, "GET", "/api/exports/escalations", token=env.tokens["sec"])
    assert status == 403  # exports are a right of their own
    status, ctype, body = yield request(env, "GET", "/api/exports/escalations", token=env.tokens["super"])
    assert status == 200 and ctype.startswith("text/csv") and b"+33612345678" not in body
    assert AuditLog(env.db).query(action="escalations.export")
    status, _, body = yield request(env, "GET", "/api/reports/escalations?practice=cab"
                                    "&since=2026-11-20T00:00:00%2B00:00&until=2026-11-27T00:00:00%2B00:00", token=env.tokens["sec"])
    assert status == 200 and json.loads(body)["tiers"]["urgent"]["active"] == 1
    status, _, _ = yield request(env, "GET", "/api/reports/escalations?practice=other", token=env.tokens["sec"])
    assert status == 403


@pytest_twisted.inlineCallbacks
def test_a_delivery_report_marks_the_step_delivered(env):
    provider_id = EscalationRepository(env.db).get(env.eid).steps[0].provider_id
    status, _, _ = yield request(env, "POST", "/api/escalations/delivery-report",
                                 {"id": provider_id, "status": "delivered"})
    assert status == 403  # no secret
    status, _, body = yield request(env, "POST", "/api/escalations/delivery-report",
                                    {"id": provider_id, "status": "delivered"}, headers={"X-Webhook-Secret": WEBHOOK})
    assert status == 200 and json.loads(body) == {"updated": True}
    assert EscalationRepository(env.db).get(env.eid).steps[0].state == "delivered"
