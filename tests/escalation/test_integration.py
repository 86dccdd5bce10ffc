"""The engine against real servers on loopback: an HTTP SMS gateway (twisted.web) and an SMTP
server with STARTTLS (aiosmtpd, self-signed certificate made by the test). Waits use a Clock; the
network uses the real reactor."""

import email
import email.policy
import json
import socket
import ssl
import subprocess

import pytest
import pytest_twisted
from aiosmtpd.controller import Controller
from twisted.internet import reactor, threads

from callrouter.domain.model import EscalationStep, EscalationTier
from callrouter.escalation.ack import Acknowledger
from callrouter.escalation.channels import HttpSmsChannel, SmtpChannel
from callrouter.store.escalations import EscalationRepository
from callrouter.store.testing import fresh_database
from tests.escalation.support import SECRET, SETTINGS, clock_at, dialplan, make_engine, replace

SMS_ONLY = EscalationTier("urgent", (EscalationStep("sms", "on_call", wait_s=60),
                                     EscalationStep("sms", "backup", wait_s=60)))


@pytest.fixture
def db(tmp_path):
    with fresh_database("sqlite", tmp_path) as database:
        yield database


def sms_settings(gateway, **kw):
    return replace(SETTINGS, **{"sms_url": gateway.url, "sms_auth_header": "Bearer gw-token", **kw})


def start(engine, plan):
    engine.startService()
    return engine.start("call-1", plan, "urgent", "+33612345678")


@pytest_twisted.inlineCallbacks
def test_the_sms_reaches_the_http_gateway_with_the_right_body(db, gateway):
    settings = sms_settings(gateway)
    plan = dialplan(escalation={"urgent": SMS_ONLY})
    engine, _ = make_engine(db, {"sms": HttpSmsChannel(settings, reactor)}, clock_at(), plan, settings=settings)
    eid = yield start(engine, plan)
    yield engine.settled(eid)
    [req] = gateway.requests
    body = json.loads(req["body"])
    assert body["to"] == "+33611111111"
    assert body["text"].startswith("URGENT Cabinet Test : rappeler le patient au 06 12 34 56 78.")
    assert req["headers"]["authorization"] == "Bearer gw-token"
    assert req["headers"]["idempotency-key"] == f"esc-{eid}-0-0"
    assert EscalationRepository(db).get(eid).steps[0].provider_id == "gw-1"


@pytest_twisted.inlineCallbacks
def test_a_form_gateway_with_basic_auth(db, gateway):
    settings = sms_settings(gateway, sms_auth_header=None, sms_username="u", sms_password="p",
                            sms_format="form", sms_body_template="dest={to}&msg={text}")
    plan = dialplan(escalation={"urgent": SMS_ONLY})
    engine, _ = make_engine(db, {"sms": HttpSmsChannel(settings, reactor)}, clock_at(), plan, settings=settings)
    eid = yield start(engine, plan)
    yield engine.settled(eid)
    [req] = gateway.requests
    assert req["body"].startswith(b"dest=%2B33611111111&msg=URGENT%20Cabinet")
    assert req["headers"]["authorization"] == "Basic dTpw"


@pytest_twisted.inlineCallbacks
def test_a_gateway_error_fails_the_step_and_the_next_goes_out_at_once(db, gateway):
    settings = sms_settings(gateway)
    gateway.status = 503
    plan = dialplan(escalation={"urgent": SMS_ONLY})
    engine, _ = make_engine(db, {"sms": HttpSmsChannel(settings, reactor)}, clock_at(), plan, settings=settings)
    eid = yield start(engine, plan)
    yield engine.settled(eid)
    assert len(gateway.requests) == 2
    steps = EscalationRepository(db).get(eid).steps
    assert [s.state for s in steps] == ["failed", "failed"]
    assert steps[0].error == "SMS gateway answered HTTP 503"


@pytest_twisted.inlineCallbacks
def test_an_unreachable_gateway_is_a_channel_failure(db):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = replace(SETTINGS, sms_url=f"http://127.0.0.1:{port}/x")
    plan = dialplan(escalation={"urgent": SMS_ONLY})
    engine, _ = make_engine(db, {"sms": HttpSmsChannel(settings, reactor)}, clock_at(), plan, settings=settings)
    eid = yield start(engine, plan)
    yield engine.settled(eid)
    assert EscalationRepository(db).get(eid).steps[0].error.startswith("SMS gateway unreachable")


@pytest_twisted.inlineCallbacks
def test_an_sms_reply_acknowledges_and_stops_the_chain(db, gateway):
    settings = sms_settings(gateway)
    plan = dialplan(escalation={"urgent": SMS_ONLY})
    clock = clock_at()
    engine, _ = make_engine(db, {"sms": HttpSmsChannel(settings, reactor)}, clock, plan, settings=settings)
    eid = yield start(engine, plan)
    yield engine.settled(eid)
    acks = Acknowledger(EscalationRepository(db), SECRET, engine.acknowledged)
    assert acks.by_sms("+33699999999", "OK", engine.now()).action == "ignored"  # a stranger acknowledges nothing
    result = acks.by_sms("+33611111111", "OK", engine.now())
    assert result.accepted and EscalationRepository(db).get(eid).acknowledged_by == "dr-martin"
    clock.advance(3600)
    yield engine.settled(eid)
    assert len(gateway.requests) == 1


@pytest_twisted.inlineCallbacks
def test_a_new_engine_on_the_same_database_finishes_the_chain_without_duplicate_sms(db, gateway):
    settings = sms_settings(gateway)
    plan = dialplan(escalation={"urgent": SMS_ONLY})
    clock = clock_at()
    first, _ = make_engine(db, {"sms": HttpSmsChannel(settings, reactor)}, clock, plan, settings=settings)
    eid = yield start(first, plan)
    yield first.settled(eid)
    first.stopService()
    second, _ = make_engine(db, {"sms": HttpSmsChannel(settings, reactor)}, clock, plan, settings=settings)
    second.startService()
    yield second.ready
    yield second.settled(eid)
    assert len(gateway.requests) == 1
    clock.advance(60)
    yield second.settled(eid)
    clock.advance(60)
    yield second.settled(eid)
    assert [json.loads(r["body"])["to"] for r in gateway.requests] == ["+33611111111", "+33622222222"]
    assert EscalationRepository(db).get(eid).outcome == "exhausted"


# --- SMTP with STARTTLS ------------------------------------------------------------------------


class Recorder:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((session.ssl is not None, envelope))
        return "250 OK"


@pytest.fixture
def smtp_server(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, ready_timeout=10)
    controller.start()
    handler.port, handler.cert = port, cert
    yield handler
    controller.stop()


@pytest_twisted.inlineCallbacks
def test_the_email_goes_through_a_real_smtp_server_over_starttls(db, smtp_server):
    settings = replace(SETTINGS, smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_cafile=smtp_server.cert,
                       smtp_from="escalade@telesecretariat.example")
    tier = EscalationTier("urgent", (EscalationStep("email", "on_call", wait_s=60),))
    plan = dialplan(escalation={"urgent": tier})
    channel = SmtpChannel(settings, lambda f, *a: threads.deferToThread(f, *a))
    engine, _ = make_engine(db, {"email": channel}, clock_at(), plan, settings=settings)
    eid = yield start(engine, plan)
    yield engine.settled(eid)
    [(over_tls, envelope)] = smtp_server.envelopes
    assert over_tls
    assert envelope.rcpt_tos == ["martin@example.org"]
    mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert mail["Subject"] == "[URGENT] Cabinet Test : patient à rappeler"
    assert mail["From"] == "escalade@telesecretariat.example"
    body = mail.get_content()
    assert "merci de rappeler le patient au 06 12 34 56 78" in body
    assert f"https://cr.example.org/ack/{eid}-0-0-" in body
    assert EscalationRepository(db).get(eid).steps[0].state == "sent"


@pytest_twisted.inlineCallbacks
def test_an_smtp_server_with_an_untrusted_certificate_fails_the_step(db, smtp_server):
    settings = replace(SETTINGS, smtp_host="127.0.0.1", smtp_port=smtp_server.port)  # system CAs only
    tier = EscalationTier("urgent", (EscalationStep("email", "on_call", wait_s=60),))
    plan = dialplan(escalation={"urgent": tier})
    channel = SmtpChannel(settings, lambda f, *a: threads.deferToThread(f, *a))
    engine, _ = make_engine(db, {"email": channel}, clock_at(), plan, settings=settings)
    eid = yield start(engine, plan)
    yield engine.settled(eid)
    assert smtp_server.envelopes == []
    assert EscalationRepository(db).get(eid).steps[0].error.startswith("SMTP:")
