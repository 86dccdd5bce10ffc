"""The escalation's senders follow a settings reload: the file edited, read again (the reload's own
path: callrouter.live_settings on the real settings loader), the engine on its real store; the
next SMS reaches the new HTTP gateway (none the old), the next mail the new SMTP server, and the
SMPP channel unbinds from the old SMSC and binds to the new one, a message sent meanwhile going
once, on the new bind. All on loopback: twisted.web gateways, aiosmtpd, the tests' SMSC."""

from __future__ import annotations

import json
import socket

import pytest
import pytest_twisted
from aiosmtpd.controller import Controller
from prometheus_client import CollectorRegistry
from twisted.internet import reactor, task, threads
from twisted.web import server

from callrouter.config import load_settings
from callrouter.domain.model import EscalationStep, EscalationTier
from callrouter.escalation.channels import build_channels
from callrouter.escalation.messages import Message
from callrouter.escalation.service import in_thread_pool
from callrouter.live_settings import SettingsReload, running_parts
from callrouter.store.escalations import EscalationRepository
from callrouter.store.testing import fresh_database
from tests.escalation.support import SECRET, Gateway, clock_at, dialplan, make_engine, replace
from tests.escalation.test_smpp import Smsc, smpp_settings, until

SMS = EscalationTier("urgent", (EscalationStep("sms", "on_call", wait_s=0),))
MAIL = EscalationTier("urgent", (EscalationStep("email", "on_call", wait_s=0),))


@pytest.fixture
def db(tmp_path):
    with fresh_database("sqlite", tmp_path) as database:
        yield database


def gateway_on_loopback():
    site = Gateway()
    port = reactor.listenTCP(0, server.Site(site), interface="127.0.0.1")
    site.url = f"http://127.0.0.1:{port.getHost().port}/sms/send"
    return site, port


def write(path, escalation: dict) -> None:
    path.write_text(json.dumps({"escalation": {"enabled": True, "ack_secret": SECRET,
                                               "public_url": "https://cr.example.org", **escalation}}))


def reloader(path, engine):
    running = load_settings(path)
    audits = []
    reload = SettingsReload(path, running, running_parts({"escalation": engine}), lambda *a: audits.append(a),
                            CollectorRegistry(), whole=True)
    return reload, audits


@pytest_twisted.inlineCallbacks
def test_an_edited_gateway_takes_the_next_sms_and_the_old_one_gets_none(db, tmp_path):
    old, old_port = gateway_on_loopback()
    new, new_port = gateway_on_loopback()
    try:
        path = tmp_path / "callrouter.yaml"
        write(path, {"sms_url": old.url, "sms_auth_header": "Bearer ancien"})
        settings = load_settings(path).escalation
        engine, _ = make_engine(db, build_channels(settings, reactor, in_thread_pool(reactor)), clock_at(),
                                dialplan(escalation={"urgent": SMS}), settings=settings)
        engine.startService()
        reload, audits = reloader(path, engine)
        first = yield engine.start("call-1", dialplan(escalation={"urgent": SMS}), "urgent", "+33612345678")
        yield engine.settled(first)
        assert len(old.requests) == 1

        write(path, {"sms_url": new.url, "sms_auth_header": "Bearer nouveau"})
        outcome = reload.reload()
        assert outcome.result == "applied" and outcome.plan.restart == ()
        [(target, before, after, details)] = audits
        assert after == {"escalation.sms_url": new.url, "escalation.sms_auth_header": "***"}  # never the secret

        second = yield engine.start("call-2", dialplan(escalation={"urgent": SMS}), "urgent", "+33612345679")
        yield engine.settled(second)
        assert len(old.requests) == 1 and len(new.requests) == 1
        assert new.requests[0]["headers"]["authorization"] == "Bearer nouveau"
        assert EscalationRepository(db).get(second).steps[0].state == "sent"
        yield engine.stopService()
    finally:
        yield old_port.stopListening()
        yield new_port.stopListening()


def test_the_first_gateway_or_another_kind_of_sender_needs_a_restart(tmp_path, db):
    path = tmp_path / "callrouter.yaml"
    write(path, {"smtp_host": "127.0.0.1"})
    settings = load_settings(path).escalation
    engine, _ = make_engine(db, build_channels(settings, reactor, in_thread_pool(reactor)), clock_at(),
                            settings=settings)
    reload, _ = reloader(path, engine)
    write(path, {"smtp_host": "127.0.0.1", "sms_url": "http://127.0.0.1:9/sms"})  # a first SMS gateway
    outcome = reload.reload()
    assert [c.key for c, _ in outcome.plan.restart] == ["escalation.sms_url"] and outcome.plan.live == ()
    assert "sms" not in engine._channels


class Recorder:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


def smtp_on_loopback():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    handler.port = port
    return handler, controller


@pytest_twisted.inlineCallbacks
def test_an_edited_smtp_relay_takes_the_next_mail(db, tmp_path):
    (old, old_c), (new, new_c) = smtp_on_loopback(), smtp_on_loopback()
    try:
        path = tmp_path / "callrouter.yaml"
        write(path, {"smtp_host": "127.0.0.1", "smtp_port": old.port, "smtp_starttls": False,
                     "smtp_from": "ancien@cabinet.example"})
        settings = load_settings(path).escalation
        engine, _ = make_engine(db, build_channels(settings, reactor, in_thread_pool(reactor)), clock_at(),
                                dialplan(escalation={"urgent": MAIL}), settings=settings,
                                run=lambda f, *a: threads.deferToThread(f, *a))
        engine.startService()
        reload, _ = reloader(path, engine)
        write(path, {"smtp_host": "127.0.0.1", "smtp_port": new.port, "smtp_starttls": False,
                     "smtp_from": "alertes@cabinet.example"})
        assert reload.reload().result == "applied"
        eid = yield engine.start("call-1", dialplan(escalation={"urgent": MAIL}), "urgent", "+33612345678")
        yield engine.settled(eid)
        assert old.envelopes == []
        [envelope] = new.envelopes
        assert envelope.mail_from == "alertes@cabinet.example"
        yield engine.stopService()
    finally:
        old_c.stop()
        new_c.stop()


@pytest_twisted.inlineCallbacks
def test_the_smpp_channel_binds_again_to_the_edited_smsc_and_sends_once_on_the_new_bind():
    old, new = Smsc(), Smsc()
    ports = []
    for smsc in (old, new):
        ports.append(reactor.listenTCP(0, smsc, interface="127.0.0.1"))
        smsc.port = ports[-1].getHost().port
    try:
        channel = build_channels(smpp_settings(old), reactor, in_thread_pool(reactor))["sms"]
        channel.startService()
        yield channel.send(Message("sms", "+33611111111", "", "avant", "k1"))
        assert len(old.submits) == 1

        moved = channel.follow(smpp_settings(new))
        queued = channel.send(Message("sms", "+33611111111", "", "pendant", "k2"))  # while it binds again
        yield moved
        provider_id = yield queued
        yield until(lambda: old.unbinds == 1)
        assert provider_id == "smsc-1" and len(new.binds) == 1 and len(new.submits) == 1
        assert len(old.submits) == 1  # nothing twice, nothing more on the old SMSC

        yield channel.send(Message("sms", "+33611111111", "", "après", "k3"))
        assert len(new.submits) == 2 and len(old.binds) == 1  # the old one is not bound again
        same = channel.follow(replace(smpp_settings(new), smpp_source_addr="Autre"))  # not the bind's
        yield same
        assert len(new.binds) == 1
        yield channel.stopService()
    finally:
        for smsc in (old, new):
            for c in smsc.connections:
                c.transport.loseConnection()
        for port in ports:
            yield port.stopListening()


class HoldingSmsc(Smsc):
    """The tests' SMSC, answering the submits only once `release()` is called while `held`."""

    def __init__(self):
        super().__init__()
        self.held, self.waiting = False, []

    def buildProtocol(self, addr):
        p = super().buildProtocol(addr)
        send = p.send

        def maybe_held(command_id, sequence, body=b"", status=0):
            if command_id == 0x80000004 and self.held:
                self.waiting.append(lambda: send(command_id, sequence, body, status))
            else:
                send(command_id, sequence, body, status)

        p.send = maybe_held
        return p

    def release(self):
        self.held = False
        waiting, self.waiting = self.waiting, []
        for answer in waiting:
            answer()


@pytest_twisted.inlineCallbacks
def test_a_submit_under_way_finishes_on_the_old_bind_before_it_unbinds():
    old, new = HoldingSmsc(), Smsc()
    ports = []
    for smsc in (old, new):
        ports.append(reactor.listenTCP(0, smsc, interface="127.0.0.1"))
        smsc.port = ports[-1].getHost().port
    try:
        channel = build_channels(smpp_settings(old), reactor, in_thread_pool(reactor))["sms"]
        channel.startService()
        yield channel.when_bound()
        old.held = True
        under_way = channel.send(Message("sms", "+33611111111", "", "en cours", "k1"))
        yield until(lambda: len(old.submits) == 1 and old.waiting)
        moved, renewed = channel.follow(smpp_settings(new)), []
        moved.addCallback(lambda r: renewed.append(True) or r)
        yield task.deferLater(reactor, 0.3, lambda: None)  # time for an unbind that should not come
        assert old.unbinds == 0 and renewed == []  # it waits for the answer
        old.release()
        provider_id = yield under_way
        yield moved
        yield until(lambda: len(new.binds) == 1)
        assert provider_id == "smsc-1" and old.unbinds == 1 and len(old.submits) == 1 and new.submits == []
        yield channel.stopService()
    finally:
        for smsc in (old, new):
            for c in smsc.connections:
                c.transport.loseConnection()
        for port in ports:
            yield port.stopListening()
