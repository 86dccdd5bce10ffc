"""Practitioners' SMS replies and exhausted chains through real parts: the daemon's wiring
(build_escalation), the inbound-SMS webhook over real HTTP on loopback, a real HTTP SMS gateway
receiving the alerts and the answers, a real SMTP server (STARTTLS) for the duty contact's e-mail.
The chains run on the real reactor, with waits of a fraction of a second."""

import csv
import datetime as dt
import io
import json

import pytest
import pytest_twisted
from prometheus_client import CollectorRegistry
from twisted.internet import defer, reactor, task

from callrouter.domain.model import EscalationStep, EscalationTier
from callrouter.escalation.service import build_escalation
from callrouter.escalation.settings import DutyContact
from callrouter.events.notifier import EventNotifier
from callrouter.events.testing import RecordingPublisher
from callrouter.store.audit import AuditLog
from callrouter.store.calls import CallRepository
from callrouter.store.escalations import EscalationRepository
from callrouter.store.testing import fresh_database
from callrouter.store.users import UserRepository
from callrouter.web.api import Api
from callrouter.web.escalations import EscalationApi
from tests.escalation.support import SETTINGS, dialplan, http_request, listen, replace, sign_in
from tests.escalation.test_integration import smtp_server  # noqa: F401 (a fixture)

WEBHOOK = "hook-secret"
DUTY_PHONE, DUTY_MAIL = "+33600000000", "supervision@example.org"
# dr-martin then dr-roux by SMS, named (the real clock decides who is on call otherwise).
TIER = EscalationTier("urgent", (EscalationStep("sms", "dr-martin", wait_s=30),
                                 EscalationStep("sms", "dr-roux", wait_s=30)))
QUICK = EscalationTier("urgent", (EscalationStep("sms", "dr-martin", wait_s=0.3),
                                  EscalationStep("sms", "dr-roux", wait_s=0.3)))


class Env:
    pass


def build(tmp_path, gateway, tier, **settings):
    e = Env()
    e.plan = dialplan(escalation={"urgent": tier})
    e.publisher = RecordingPublisher()
    e.registry = CollectorRegistry()
    e.settings = replace(SETTINGS, sms_url=gateway.url, inbound_sms_secret=WEBHOOK, **settings)
    e.dbs = fresh_database("sqlite", tmp_path)
    e.db = e.dbs.__enter__()
    e.parts = build_escalation(e.settings, EscalationRepository(e.db), lambda practice: e.plan, reactor, e.registry,
                               events=EventNotifier(e.publisher, "node-1", reactor))
    e.parts.engine.startService()
    users = UserRepository(e.db)
    e.tokens = sign_in(users, dt.datetime.now(dt.timezone.utc))
    api = Api(users, CallRepository(e.db), AuditLog(e.db), None, dt.timedelta(hours=1),
              EscalationApi(AuditLog(e.db), e.parts.repo, e.parts.acknowledger, WEBHOOK))
    e.port_object, e.port = listen(api)
    e.gateway = gateway
    return e


@pytest.fixture
def env(tmp_path, gateway):
    e = build(tmp_path, gateway, TIER)
    yield e
    pytest_twisted.blockon(defer.maybeDeferred(e.port_object.stopListening))
    pytest_twisted.blockon(defer.maybeDeferred(e.parts.engine.stopService))
    e.dbs.__exit__(None, None, None)


def sms_to(gateway, number):
    return [json.loads(r["body"])["text"] for r in gateway.requests if json.loads(r["body"])["to"] == number]


def reply(env, number, text):
    return http_request(env.port, "POST", "/api/escalations/inbound-sms", {"from": number, "text": text},
                        headers={"X-Webhook-Secret": WEBHOOK})


@pytest_twisted.inlineCallbacks
def until(predicate, timeout=10.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        yield task.deferLater(reactor, 0.02, lambda: None)
    raise AssertionError("timed out waiting")


@pytest_twisted.inlineCallbacks
def start(env):
    eid = yield env.parts.engine.start("call-1", env.plan, "urgent", "+33612345678")
    yield until(lambda: len(env.gateway.requests) >= 1)
    return eid


@pytest_twisted.inlineCallbacks
def test_a_refusal_over_the_webhook_declines_and_the_backup_is_alerted_at_once(env):
    """"NON je ne peux pas, voyez avec Dr B" used to acknowledge the chain and leave the patient
    with nobody. Now: recorded as dr-martin's decline, dr-roux's SMS at once (not in 30 s)."""
    eid = yield start(env)
    [alert] = sms_to(env.gateway, "+33611111111")
    assert f"Répondez OK E{eid} si vous prenez en charge, NON E{eid} si vous ne pouvez pas." in alert
    status, _, body = yield reply(env, "+33611111111", "NON je ne peux pas, voyez avec Dr B")
    assert status == 200 and json.loads(body) == {"acknowledged": False, "escalation_id": eid,
                                                  "escalation_ids": [eid], "understood": "no",
                                                  "action": "declined"}
    yield until(lambda: sms_to(env.gateway, "+33622222222"))
    yield until(lambda: len(sms_to(env.gateway, "+33611111111")) == 2)
    assert sms_to(env.gateway, "+33611111111")[1] == f"Refus enregistré pour l'alerte E{eid} : l'escalade passe à la suite."
    status, _, body = yield reply(env, "+33622222222", f"ok E{eid}")
    assert json.loads(body)["acknowledged"] is True
    yield until(lambda: len(sms_to(env.gateway, "+33622222222")) == 2)
    assert sms_to(env.gateway, "+33622222222")[1] == f"Merci : prise en charge de l'alerte E{eid} enregistrée."

    status, _, body = yield http_request(env.port, "GET", f"/api/escalations/{eid}", token=env.tokens["sec"])
    view = json.loads(body)
    assert (view["outcome"], view["acknowledged_by"], view["declined_by"]) == ("acknowledged", "dr-roux", ["dr-martin"])
    assert [(r["sender"], r["practitioner"], r["understood"], r["action"], r["via"]) for r in view["replies"]] == [
        ("+33*******11", "dr-martin", "no", "declined", "webhook"),
        ("+33*******22", "dr-roux", "yes", "acknowledged", "webhook")]
    status, _, body = yield http_request(env.port, "GET", "/api/exports/escalations", token=env.tokens["super"])
    header, row = list(csv.reader(io.StringIO(body.decode())))
    line = dict(zip(header, row))
    assert line["declined_by"] == "dr-martin" and "dr-roux yes: acknowledged" in line["replies"]
    assert "+33611111111" not in body.decode()


@pytest_twisted.inlineCallbacks
def test_an_unclear_reply_changes_nothing_and_is_answered_with_how_to_reply(env):
    eid = yield start(env)
    status, _, body = yield reply(env, "+33611111111", "OK je rappelle")
    assert json.loads(body)["action"] == "explained"
    yield until(lambda: len(sms_to(env.gateway, "+33611111111")) == 2)
    assert sms_to(env.gateway, "+33611111111")[1] == (
        f"Réponse non comprise. Répondez OK E{eid} pour prendre en charge l'alerte, ou NON E{eid} si vous "
        "ne pouvez pas.")
    view = env.parts.repo.get(eid)
    assert view.acknowledged_at is None and view.state == "active" and not sms_to(env.gateway, "+33622222222")


@pytest_twisted.inlineCallbacks
def test_with_two_chains_open_a_reply_without_reference_is_asked_which_never_guessed(env):
    first = yield start(env)
    second = yield env.parts.engine.start("call-2", env.plan, "urgent", "+33687654321")
    yield until(lambda: len(env.gateway.requests) == 2)
    status, _, body = yield reply(env, "+33611111111", "oui")
    assert json.loads(body)["action"] == "asked_which"
    assert sorted(json.loads(body)["escalation_ids"]) == [first, second]
    yield until(lambda: len(sms_to(env.gateway, "+33611111111")) == 3)
    assert sms_to(env.gateway, "+33611111111")[2].startswith(f"Plusieurs alertes sont en cours (E{second}, E{first}).")
    assert env.parts.repo.get(first).acknowledged_at is None and env.parts.repo.get(second).acknowledged_at is None
    status, _, body = yield reply(env, "+33611111111", f"OUI E{first}")
    assert json.loads(body) == {"acknowledged": True, "escalation_id": first, "escalation_ids": [first],
                                "understood": "yes", "action": "acknowledged"}
    assert env.parts.repo.get(second).acknowledged_at is None


@pytest_twisted.inlineCallbacks
def test_an_exhausted_chain_alerts_the_duty_contact_by_sms_and_email_event_and_metric(tmp_path, gateway,
                                                                                     smtp_server):  # noqa: F811
    e = build(tmp_path, gateway, QUICK, smtp_host="127.0.0.1", smtp_port=smtp_server.port,
              smtp_cafile=smtp_server.cert, duty_contact=DutyContact(sms=DUTY_PHONE, email=DUTY_MAIL))
    try:
        eid = yield e.parts.engine.start("call-1", e.plan, "urgent", "+33612345678")
        yield until(lambda: e.parts.repo.get(eid).outcome == "exhausted")
        yield until(lambda: [a.state for a in e.parts.repo.get(eid).duty_alerts] == ["sent", "sent"])
        [sms] = sms_to(gateway, DUTY_PHONE)
        assert sms.startswith(f"ALERTE télésecrétariat : escalade E{eid} URGENT Cabinet Test terminée sans prise "
                              "en charge.")
        [(over_tls, envelope)] = smtp_server.envelopes
        assert over_tls and envelope.rcpt_tos == [DUTY_MAIL]
        assert f"escalade E{eid} sans prise en charge" in envelope.content.decode()
        [event] = e.publisher.on("/escalations/cab/exhausted")
        assert event.payload["escalation_id"] == eid and event.payload["duty_alerts"] == ["sms", "email"]
        assert e.registry.get_sample_value("callrouter_escalations_exhausted_total",
                                           {"practice": "cab", "tier": "urgent"}) == 1
        status, _, body = yield http_request(e.port, "GET", f"/api/escalations/{eid}", token=e.tokens["sec"])
        assert [(d["channel"], d["state"]) for d in json.loads(body)["duty_alerts"]] == [("sms", "sent"),
                                                                                        ("email", "sent")]
    finally:
        yield defer.maybeDeferred(e.port_object.stopListening)
        yield defer.maybeDeferred(e.parts.engine.stopService)
        e.dbs.__exit__(None, None, None)
