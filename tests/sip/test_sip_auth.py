"""Secretaries' softphones at the real Kamailio: digest REGISTER against callrouter's users table."""

from __future__ import annotations

import datetime as dt

import pytest

from callrouter.sip.registrations import parse_ul_dump
from tests.sip.conftest import ADMIN, SIP_PASSWORD
from tests.sip.harness import Sipp, wait_for
from tests.sip.sipclient import SipClient, tls_register

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_a_softphone_registers_with_its_sip_password_over_udp_and_tcp(edge, reaper, transport):
    """SIPp's digest answer to Kamailio's challenge, checked against the store's HA1."""
    sipp = reaper.add(Sipp(
        edge.workdir, "kamailio_register.xml", remote=("127.0.0.1", edge.sip.udp_port),
        extra=["-t", transport, "-set", "user", "alice", "-au", "alice", "-ap", SIP_PASSWORD],
        timeout_s=20, name=f"register-{transport}"))
    assert sipp.wait(30) == 0, sipp.errors()
    contacts = edge.kamailio.rpc.fetch()["alice"]
    proto = {"u1": "udp", "t1": "tcp"}[transport]
    assert any(c.socket.startswith(proto + ":") for c in contacts)


def test_a_softphone_registers_over_tls_with_the_generated_certificate(edge):
    """Debian's SIPp has no TLS, so a Python TLS client speaks for the softphone."""
    challenge, answer = tls_register(("127.0.0.1", edge.sip.tls_port), "alice", SIP_PASSWORD)
    assert (challenge.status, answer.status) == (401, 200)
    assert (edge.workdir / "tls" / "kamailio.crt").exists()
    contacts = edge.kamailio.rpc.fetch()["alice"]
    assert any(c.socket.startswith("tls:") for c in contacts)


def test_wrong_password_and_unknown_user_get_the_same_refusal(edge):
    client = SipClient(edge.address, bind_ip="127.0.0.11")
    try:
        wrong = client.register("alice", "not-the-password")
        unknown = client.register("mallory", "not-the-password")
    finally:
        client.close()
    assert wrong is not None and unknown is not None
    assert (wrong.status, wrong.reason) == (unknown.status, unknown.reason) == (401, "Unauthorized")
    assert [k for k, _ in wrong.headers if k not in ("Call-ID", "CSeq", "From", "To", "Via")] == \
        [k for k, _ in unknown.headers if k not in ("Call-ID", "CSeq", "From", "To", "Via")]


@pytest.mark.parametrize("user", ["bob", "carol"])
def test_a_disabled_user_or_one_without_sip_password_is_refused_and_kamailio_survives(edge, user):
    """bob was disabled (HA1 set to NULL): auth_db crashed Kamailio on such a row; we must not."""
    client = SipClient(edge.address, bind_ip="127.0.0.12")
    try:
        response = client.register(user, SIP_PASSWORD)
        assert response is not None and response.status == 401
        assert client.options() is not None  # still answering
    finally:
        client.close()
    assert edge.kamailio.alive()
    assert user not in edge.kamailio.rpc.fetch()


def test_disabling_a_user_cuts_sip_access_at_once(edge):
    client = SipClient(edge.address, bind_ip="127.0.0.13")
    try:
        assert client.register("dave", SIP_PASSWORD).status == 200
        edge.users.disable(ADMIN, "dave", dt.datetime.now(dt.timezone.utc))
        assert client.register("dave", SIP_PASSWORD).status == 401
        invite = client.request("INVITE", f"sip:0142000001@127.0.0.1:{edge.sip.udp_port}",
                                "dave", "0142000001", password=SIP_PASSWORD)
        assert invite is not None and invite.status == 407
    finally:
        client.close()


def test_the_registrations_client_lists_registered_users_with_their_contacts(edge):
    client = SipClient(edge.address, bind_ip="127.0.0.14")
    try:
        assert client.register("alice", SIP_PASSWORD, expires=600).status == 200
    finally:
        client.close()
    registered = edge.kamailio.rpc.fetch()
    contact = next(c for c in registered["alice"] if f"@127.0.0.14:{client.port}" in c.address)
    assert contact.expires > 0 and contact.user_agent == "callrouter-test"
    assert "alice" in edge.kamailio.rpc.registered_usernames()
    assert "bob" not in registered


def test_repeated_failed_authentications_ban_the_source_only(edge):
    attacker = SipClient(edge.address, bind_ip="127.0.0.15")
    other = SipClient(edge.address, bind_ip="127.0.0.16")
    try:
        answers = [attacker.register("alice", f"guess-{i}", timeout=2) for i in range(edge.sip.auth_failures_max + 2)]
        assert answers[0] is not None and answers[0].status == 401
        assert answers[-1] is None  # banned: no answer at all
        assert attacker.register("alice", SIP_PASSWORD, timeout=2) is None
        assert other.register("mallory", "x").status == 401  # another source is still answered
    finally:
        attacker.close()
        other.close()
    assert "127.0.0.15 banned" in edge.kamailio.log_text()


def test_parse_ul_dump_reads_kamailio_5_6_shape():
    result = {"Domains": [{"Domain": {"Domain": "location", "AoRs": [
        {"Info": {"AoR": "alice", "Contacts": [{"Contact": {
            "Address": "sip:alice@10.0.0.2:5060", "Expires": 120, "User-Agent": "X",
            "Received": "[not set]", "Socket": "udp:1.2.3.4:5060"}}]}},
        {"Info": {"AoR": "gone", "Contacts": []}}]}}]}
    registered = parse_ul_dump(result)
    assert list(registered) == ["alice"]
    assert registered["alice"][0].received is None and registered["alice"][0].expires == 120
