"""The SMPP channel against a small SMSC written here: a real TCP server on 127.0.0.1 speaking
SMPP 3.4 PDUs, with its own decoding (independent of the channel's). Waits of the chains use a
Clock; the network, the bind and the keepalive use the real reactor."""

from __future__ import annotations

import struct

import pytest
import pytest_twisted
from prometheus_client import CollectorRegistry
from twisted.internet import defer, protocol, reactor, task

from callrouter.domain.model import EscalationStep, EscalationTier
from callrouter.escalation.ack import Acknowledger
from callrouter.escalation.channels import build_channels
from callrouter.escalation.messages import Message
from callrouter.escalation.service import build_escalation
from callrouter.escalation.settings import EscalationSettings
from callrouter.escalation.smpp import SmppChannel, SmppInbound
from callrouter.escalation.smpp_codec import (
    DC_GSM, DC_UCS2, PduReader, Pdu, ShortMessage, e164, encode_parts, gsm_decode,
    receipt,
)
from callrouter.store.escalations import EscalationRepository
from callrouter.store.testing import fresh_database
from tests.escalation.support import SECRET, SETTINGS, clock_at, dialplan, make_engine, replace, sync

SMS_ONLY = EscalationTier("urgent", (EscalationStep("sms", "on_call", wait_s=60),
                                     EscalationStep("sms", "backup", wait_s=60)))


# --- a small SMSC ---------------------------------------------------------------------------------

def cstr(body: bytes, i: int) -> tuple[bytes, int]:
    end = body.index(b"\0", i)
    return body[i:end], end + 1


class SmscProtocol(protocol.Protocol):
    def connectionMade(self):
        self.buffer, self.seq = b"", 1000
        self.factory.connections.append(self)

    def send(self, command_id, sequence, body=b"", status=0):
        self.transport.write(struct.pack(">IIII", 16 + len(body), command_id, status, sequence) + body)

    def dataReceived(self, data):
        self.buffer += data
        while len(self.buffer) >= 16:
            length, cid, status, seq = struct.unpack(">IIII", self.buffer[:16])
            if len(self.buffer) < length:
                return
            body, self.buffer = self.buffer[16:length], self.buffer[length:]
            self.handle(cid, seq, body)

    def handle(self, cid, seq, body):
        f = self.factory
        if cid == 0x09:  # bind_transceiver
            system_id, i = cstr(body, 0)
            password, i = cstr(body, i)
            f.binds.append((system_id, password, body[-4]))
            ok = (system_id, password) == (b"cr", b"secret")
            self.send(0x80000009, seq, b"SMSC\0", 0 if ok else 0x0E)
        elif cid == 0x04:  # submit_sm
            _, i = cstr(body, 0)
            src_ton = body[i]
            src, i = cstr(body, i + 2)
            dst_ton = body[i]
            dst, i = cstr(body, i + 2)
            esm = body[i]
            _, i = cstr(body, i + 3)
            _, i = cstr(body, i)
            registered, coding, length = body[i], body[i + 2], body[i + 4]
            sm = body[i + 5:i + 5 + length]
            tlvs = body[i + 5 + length:]
            f.submits.append({"src": src, "src_ton": src_ton, "dst": dst, "dst_ton": dst_ton, "esm": esm,
                              "registered": registered, "coding": coding, "sm": sm, "tlvs": tlvs})
            self.send(0x80000004, seq, f"smsc-{len(f.submits)}".encode() + b"\0")
        elif cid == 0x15:  # enquire_link
            f.enquires += 1
            if f.answer_enquire:
                self.send(0x80000015, seq)
        elif cid == 0x06:  # unbind
            f.unbinds += 1
            self.send(0x80000006, seq)
            self.transport.loseConnection()
        elif cid == 0x80000005:  # deliver_sm_resp
            f.delivered.append((seq, body))
        elif cid & 0x80000000:
            f.answers.append(cid)

    def deliver(self, source: bytes, esm: int, coding: int, message: bytes, tlvs: bytes = b""):
        self.seq += 1
        body = (b"\0" + bytes([1, 1]) + source + b"\0" + bytes([5, 0]) + b"Cabinet\0" + bytes([esm, 0, 0])
                + b"\0\0" + bytes([0, 0, coding, 0, len(message)]) + message + tlvs)
        self.send(0x00000005, self.seq, body)


class Smsc(protocol.Factory):
    protocol = SmscProtocol

    def __init__(self):
        self.connections, self.binds, self.submits, self.delivered, self.answers = [], [], [], [], []
        self.enquires = self.unbinds = 0
        self.answer_enquire = True

    @property
    def current(self) -> SmscProtocol:
        return self.connections[-1]


@pytest.fixture
def smsc():
    factory = Smsc()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    factory.port = port.getHost().port
    yield factory
    for c in factory.connections:
        c.transport.loseConnection()
    pytest_twisted.blockon(port.stopListening())


@pytest.fixture
def db(tmp_path):
    with fresh_database("sqlite", tmp_path) as database:
        yield database


def smpp_settings(smsc, **kw):
    return replace(SETTINGS, **{"sms_gateway": "smpp", "smpp_host": "127.0.0.1", "smpp_port": smsc.port,
                                "smpp_system_id": "cr", "smpp_password": "secret", "smpp_source_addr": "Cabinet",
                                "http_timeout_seconds": 5.0, "smpp_reconnect_seconds": 0.05, **kw})


@defer.inlineCallbacks
def until(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        yield task.deferLater(reactor, 0.02, lambda: None)
    raise AssertionError("timed out waiting")


def reassemble(submits) -> tuple[str, list[int]]:
    """The text of concatenated parts (UDH stripped), and each part's (ref, total, n) check."""
    text = ""
    for s in submits:
        sm = s["sm"]
        if s["esm"] & 0x40:
            sm = sm[1 + sm[0]:]
        text += gsm_decode(sm) if s["coding"] == 0 else sm.decode("utf-16-be")
    return text, [s["sm"][5] for s in submits if s["esm"] & 0x40]


class Env:
    pass


@pytest.fixture
def env(db, smsc):
    e = Env()
    # A long public address: with the signed link, the SMS needs two parts.
    e.settings = smpp_settings(smsc, public_url="https://telesecretariat.example.org/cabinets/alertes")
    e.repo = EscalationRepository(db)
    acks = Acknowledger(e.repo, SECRET, lambda view: e.engine.acknowledged(view),
                        declined=lambda eid: e.engine.declined(eid), answer=lambda to, text: e.engine.answer_sms(to, text))
    e.clock = clock_at()
    e.channel = build_channels(e.settings, reactor, sync, inbound=SmppInbound(e.repo, acks, e.clock, sync))["sms"]
    assert isinstance(e.channel, SmppChannel)
    e.plan = dialplan(escalation={"urgent": SMS_ONLY})
    e.engine, _ = make_engine(db, {"sms": e.channel}, e.clock, e.plan, settings=e.settings)
    e.engine.startService()
    yield e
    pytest_twisted.blockon(e.engine.stopService())


# --- behaviour --------------------------------------------------------------------------------------

@pytest_twisted.inlineCallbacks
def test_submitted_receipt_stored_and_a_reply_acknowledges(env, smsc):
    eid = yield env.engine.start("call-1", env.plan, "urgent", "+33612345678")
    yield env.engine.settled(eid)
    assert smsc.binds == [(b"cr", b"secret", 0x34)]
    text, seqs = reassemble(smsc.submits)
    assert text.startswith(f"URGENT Cabinet Test : rappeler le patient au 06 12 34 56 78. Répondez OK E{eid} si "
                           f"vous prenez en charge, NON E{eid} si vous ne pouvez pas. Accusé de réception : ")
    assert len(smsc.submits) == 2 and seqs == [1, 2]  # a link makes it longer than 160: two parts with a UDH
    first = smsc.submits[0]
    assert (first["dst"], first["dst_ton"], first["src"], first["src_ton"]) == (b"33611111111", 1, b"Cabinet", 5)
    assert first["coding"] == DC_GSM and first["registered"] == 1  # é is in the GSM alphabet; receipt asked
    step = env.repo.get(eid).steps[0]
    assert (step.state, step.provider_id) == ("sent", "smsc-1")

    smsc.current.deliver(b"33611111111", 0x04, 0, b"id:smsc-1 sub:001 dlvrd:001 submit date:2611232100 "
                                                 b"done date:2611232101 stat:DELIVRD err:000 text:URGENT")
    yield until(lambda: env.repo.get(eid).steps[0].state == "delivered")
    yield until(lambda: len(smsc.delivered) == 1)  # the SMSC got its deliver_sm_resp

    smsc.current.deliver(b"33611111111", 0, 0, b"1")
    yield until(lambda: env.repo.get(eid).acknowledged_at is not None)
    view = env.repo.get(eid)
    assert (view.outcome, view.acknowledged_by, view.acknowledged_via) == ("acknowledged", "dr-martin", "sms")
    yield until(lambda: len(smsc.submits) == 3)  # the answer, over the same bind
    assert smsc.submits[2]["dst"] == b"33611111111"
    assert reassemble(smsc.submits[2:])[0] == f"Merci : prise en charge de l'alerte E{eid} enregistrée."
    env.clock.advance(3600)
    yield env.engine.settled(eid)
    assert len(smsc.submits) == 3  # the chain stopped: the backup got nothing
    [reply] = env.repo.get(eid).replies
    assert (reply.via, reply.understood, reply.action, reply.sender) == ("smpp", "yes", "acknowledged",
                                                                        "+33*******11")


@pytest_twisted.inlineCallbacks
def test_a_ucs2_reply_ok_acknowledges_and_a_receipt_by_tlv_is_read(env, smsc):
    eid = yield env.engine.start("call-1", env.plan, "urgent", "+33612345678")
    yield env.engine.settled(eid)
    tlvs = struct.pack(">HH", 0x001E, 8) + b"smsc-1\0\0" + struct.pack(">HHB", 0x0427, 1, 2)
    smsc.current.deliver(b"33611111111", 0x04, 0, b"", tlvs)
    yield until(lambda: env.repo.get(eid).steps[0].state == "delivered")
    smsc.current.deliver(b"33611111111", 0, DC_UCS2, "Oui ✓".encode("utf-16-be"))
    yield until(lambda: env.repo.get(eid).acknowledged_via == "sms")


@pytest_twisted.inlineCallbacks
def test_over_smpp_a_refusal_declines_and_the_backup_gets_the_sms_at_once(env, smsc):
    """"NON je ne peux pas, voyez avec Dr B" used to acknowledge the chain: the patient was left
    with nobody. It is a decline now, read exactly as the webhook reads it."""
    eid = yield env.engine.start("call-1", env.plan, "urgent", "+33612345678")
    yield env.engine.settled(eid)
    parts = len(smsc.submits)
    smsc.current.deliver(b"33611111111", 0, 0, b"NON je ne peux pas, voyez avec Dr B")
    yield until(lambda: any(s["dst"] == b"33622222222" for s in smsc.submits))  # no 60 s wait
    view = env.repo.get(eid)
    assert view.acknowledged_at is None and view.declined_by == ("dr-martin",)
    assert [(r.via, r.understood, r.action) for r in view.replies] == [("smpp", "no", "declined")]
    yield until(lambda: any(s["dst"] == b"33611111111" for s in smsc.submits[parts:]))
    answer = [s for s in smsc.submits[parts:] if s["dst"] == b"33611111111"]
    assert reassemble(answer)[0].startswith(f"Refus enregistré pour l'alerte E{eid}")


@pytest_twisted.inlineCallbacks
def test_over_smpp_an_unclear_reply_changes_nothing_and_is_answered_in_french(env, smsc):
    eid = yield env.engine.start("call-1", env.plan, "urgent", "+33612345678")
    yield env.engine.settled(eid)
    parts = len(smsc.submits)
    smsc.current.deliver(b"33611111111", 0, 0, b"OK je rappelle dans 5 min")
    yield until(lambda: len(smsc.submits) > parts)
    assert reassemble(smsc.submits[parts:])[0] == (
        f"Réponse non comprise. Répondez OK E{eid} pour prendre en charge l'alerte, ou NON E{eid} si vous "
        "ne pouvez pas.")
    view = env.repo.get(eid)
    assert view.acknowledged_at is None and view.state == "active"
    assert [(r.understood, r.action) for r in view.replies] == [("unclear", "explained")]


@pytest_twisted.inlineCallbacks
def test_a_reply_from_a_number_the_chain_did_not_reach_is_ignored(env, smsc):
    eid = yield env.engine.start("call-1", env.plan, "urgent", "+33612345678")
    yield env.engine.settled(eid)
    smsc.current.deliver(b"33699999999", 0, 0, b"OK")
    yield until(lambda: len(smsc.delivered) == 1)
    assert env.repo.get(eid).acknowledged_at is None


@pytest_twisted.inlineCallbacks
def test_keepalive_and_reconnection_after_the_smsc_drops_the_link(db, smsc):
    channel = SmppChannel(smpp_settings(smsc, smpp_enquire_link_seconds=0.1), reactor)
    channel.startService()
    try:
        yield until(lambda: smsc.enquires >= 2)  # enquire_link every 0.1 s once bound
        smsc.current.transport.loseConnection()
        yield until(lambda: len(smsc.binds) == 2)  # reconnected and bound again
        smsc.current.send(0x15, 77)  # the SMSC's own keepalive is answered
        yield until(lambda: 0x80000015 in smsc.answers)
        smsc.current.send(0x06, 78)  # the SMSC unbinds: answered, then a new bind
        yield until(lambda: 0x80000006 in smsc.answers and len(smsc.binds) == 3)
        smsc.answer_enquire = False  # an SMSC that hangs: the missing enquire_link_resp drops the link
        yield until(lambda: len(smsc.binds) == 4, timeout=10)
    finally:
        yield channel.stopService()


@pytest.fixture
def tls_smsc(tmp_path):
    """The same SMSC behind TLS, with a certificate for localhost made by openssl for the test."""
    import subprocess

    from twisted.internet import ssl

    key, cert = tmp_path / "smsc.key", tmp_path / "smsc.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    factory = Smsc()
    server = ssl.PrivateCertificate.loadPEM(key.read_text() + cert.read_text()).options()
    port = reactor.listenSSL(0, factory, server, interface="127.0.0.1")
    factory.port, factory.cafile = port.getHost().port, cert
    yield factory
    for c in factory.connections:
        c.transport.loseConnection()
    pytest_twisted.blockon(port.stopListening())


@pytest_twisted.inlineCallbacks
def test_the_link_to_the_smsc_can_be_tls_checked_against_its_certificate(tls_smsc, tmp_path):
    trusted = SmppChannel(smpp_settings(tls_smsc, smpp_host="localhost", smpp_tls=True, smpp_cafile=tls_smsc.cafile),
                          reactor)
    trusted.startService()
    try:
        yield until(lambda: len(tls_smsc.binds) == 1)  # bound over TLS
    finally:
        yield trusted.stopService()
    other = tmp_path / "other.pem"  # a certificate that did not sign the SMSC's: no bind, ever
    import subprocess
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                    "-keyout", str(tmp_path / "other.key"), "-out", str(other)], check=True, capture_output=True,
                   timeout=60)
    untrusted = SmppChannel(smpp_settings(tls_smsc, smpp_host="localhost", smpp_tls=True, smpp_cafile=other), reactor)
    untrusted.startService()
    try:
        yield until(lambda: len(tls_smsc.connections) >= 2)  # it did connect...
        yield task.deferLater(reactor, 1.0, lambda: None)
        assert len(tls_smsc.binds) == 1  # ...but refused the SMSC's certificate, so never bound
    finally:
        yield untrusted.stopService()


@pytest_twisted.inlineCallbacks
def test_a_refused_bind_makes_the_step_fail_and_the_chain_move_on(db, smsc):
    settings = smpp_settings(smsc, smpp_password="wrong", http_timeout_seconds=0.5)
    channel = SmppChannel(settings, reactor)
    plan = dialplan(escalation={"urgent": SMS_ONLY})
    engine, _ = make_engine(db, {"sms": channel}, clock_at(), plan, settings=settings)
    engine.startService()
    try:
        eid = yield engine.start("call-1", plan, "urgent", "+33612345678")
        yield engine.settled(eid)
        steps = EscalationRepository(db).get(eid).steps
        assert [s.state for s in steps] == ["failed", "failed"]
        assert "SMSC not bound" in steps[0].error and smsc.submits == []
    finally:
        yield engine.stopService()


@pytest_twisted.inlineCallbacks
def test_the_whole_message_in_message_payload(db, smsc):
    channel = SmppChannel(smpp_settings(smsc, smpp_long_messages="payload"), reactor)
    channel.startService()
    try:
        text = "Rappeler le patient : " + "x" * 200
        message_id = yield channel.send(Message("sms", "+33611111111", "", text, "k"))
        [s] = smsc.submits
        assert message_id == "smsc-1" and s["sm"] == b"" and s["esm"] == 0
        tag, size = struct.unpack(">HH", s["tlvs"][:4])
        assert tag == 0x0424 and gsm_decode(s["tlvs"][4:4 + size]) == text
    finally:
        yield channel.stopService()


@pytest_twisted.inlineCallbacks
def test_the_daemon_wiring_runs_receipts_and_replies_through_the_thread_pool(tmp_path, smsc):
    """build_escalation (as app.py calls it) picks the SMPP channel, starts its bind with the engine
    and connects receipts and replies to the store and the acknowledger."""
    named = EscalationTier("urgent", (EscalationStep("sms", "dr-martin", wait_s=600),))
    plan = dialplan(escalation={"urgent": named})
    with fresh_database("sqlite", tmp_path) as database:
        parts = build_escalation(smpp_settings(smsc), EscalationRepository(database), lambda practice: plan, reactor, CollectorRegistry())
        parts.engine.startService()
        try:
            yield parts.engine.ready
            eid = yield parts.engine.start("call-1", plan, "urgent", "+33612345678")
            yield parts.engine.settled(eid)
            assert [s["dst"] for s in smsc.submits] == [b"33611111111"] * 2  # one SMS in two parts
            smsc.current.deliver(b"33611111111", 0x04, 0, b"id:smsc-1 sub:001 dlvrd:001 stat:DELIVRD err:000")
            yield until(lambda: parts.repo.get(eid).steps[0].state == "delivered")
            smsc.current.deliver(b"33611111111", 0, 0, b"OK")
            yield until(lambda: parts.repo.get(eid).outcome == "acknowledged")
            yield until(lambda: parts.engine.active_ids() == [])  # told on the reactor thread: it stopped
            yield until(lambda: len(smsc.submits) == 3)  # the answer, sent from the reactor thread
            assert reassemble(smsc.submits[2:])[0].startswith("Merci : prise en charge")
        finally:
            yield parts.engine.stopService()
    assert smsc.unbinds == 1  # stopping the engine unbinds


# --- the codec, pure ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, coding, sizes", [
    ("Accusé de réception à 14 h", DC_GSM, [26]),
    ("x" * 160, DC_GSM, [160]),
    ("x" * 161, DC_GSM, [153, 8]),
    ("€" * 80, DC_GSM, [160]),                  # an extension character takes two septets
    ("a" + "€" * 80, DC_GSM, [153, 8]),         # and a pair is never cut between parts
    ("Prêt à rappeler", DC_UCS2, [30]),         # ê is not in the GSM alphabet
    ("ê" * 71, DC_UCS2, [134, 8]),
], ids=["gsm-accents", "gsm-160", "gsm-161", "extension", "escape-not-cut", "ucs2", "ucs2-long"])
def test_encoding_and_splitting(text, coding, sizes):
    got_coding, parts = encode_parts(text)
    assert got_coding == coding and [len(p) for p in parts] == sizes
    decoded = "".join(gsm_decode(p) if coding == DC_GSM else p.decode("utf-16-be") for p in parts)
    assert decoded == text


def test_receipts_from_text_or_tlvs():
    sm = ShortMessage(1, "336", "x", 0x04, 0, 0, b"id:AB12 sub:001 dlvrd:000 stat:UNDELIV err:001 text:")
    assert receipt(sm) == ("AB12", "UNDELIV")
    assert receipt(ShortMessage(1, "336", "x", 0, 0, 0, b"stat:DELIVRD")) is None  # not a receipt: a reply


def test_inbound_numbers_become_e164():
    assert e164(1, "33611111111") == "+33611111111"
    assert e164(0, "0611111111") == "+33611111111"
    assert e164(5, "Cabinet") == "Cabinet"


def test_pdus_split_across_reads():
    raw = Pdu(0x15, 0, 7).encode() + Pdu(0x80000004, 0, 8, b"id\0").encode()
    reader = PduReader()
    assert reader.feed(raw[:10]) == []
    assert reader.feed(raw[10:]) == [Pdu(0x15, 0, 7), Pdu(0x80000004, 0, 8, b"id\0")]
    with pytest.raises(ValueError):
        PduReader().feed(struct.pack(">IIII", 10, 0, 0, 0))


def test_settings_problems():
    base = dict(enabled=True, ack_secret="s")
    assert EscalationSettings(**base, sms_gateway="smpp", smpp_host="smsc", smpp_system_id="cr").problems() == []
    problems = EscalationSettings(**base, sms_gateway="smpp", smtp_host="mail").problems()
    assert "escalation.sms_gateway is smpp: set smpp_host and smpp_system_id" in problems
    assert EscalationSettings(**base, smpp_host="x", sms_gateway="sms").problems() == [
        "escalation.sms_gateway: expected http or smpp, got 'sms'"]
    assert any("at most 11" in p for p in EscalationSettings(**base, smpp_host="x",
                                                             smpp_source_addr="Cabinet Martin").problems())
