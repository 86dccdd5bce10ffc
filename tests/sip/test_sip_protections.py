"""The edge's defences at the real Kamailio: flood bans, scanners, oversized messages."""

from __future__ import annotations

import pytest

from tests.sip.harness import Sipp, wait_for
from tests.sip.sipclient import SipClient

pytestmark = pytest.mark.integration


def test_a_flooding_source_is_banned_while_another_caller_gets_through(edge, reaper):
    flood = reaper.add(Sipp(edge.workdir, "kamailio_options_flood.xml", local_ip="127.0.0.3",
                            remote=edge.address, calls=400, rate=400, timeout_s=30, name="flood"))
    flood.wait(60)  # its calls time out once banned: the exit code is not the point
    assert wait_for(lambda: "flood from 127.0.0.3, banned" in edge.kamailio.log_text())
    banned = SipClient(edge.address, bind_ip="127.0.0.3")
    other = SipClient(edge.address, bind_ip="127.0.0.31")
    try:
        assert banned.options(timeout=2) is None
        answer = other.options()
        assert answer is not None and answer.status == 200
    finally:
        banned.close()
        other.close()


@pytest.mark.parametrize("agent", ["friendly-scanner", "sipvicious 0.3", "SIPVicious", "sipcli/v1.8",
                                   "VaxSIPUserAgent/3.1"])
def test_a_scanner_user_agent_gets_no_answer_at_all(edge, agent):
    scanner = SipClient(edge.address, bind_ip="127.0.0.41", user_agent=agent)
    phone = SipClient(edge.address, bind_ip="127.0.0.41", user_agent="Linphone/5.0")
    try:
        assert scanner.options(timeout=1.5) is None
        assert scanner.register("alice", "x", timeout=1.5) is None
        assert phone.options().status == 200  # same address, a real phone: answered
    finally:
        scanner.close()
        phone.close()


def test_an_oversized_message_is_refused(edge):
    client = SipClient(edge.address, bind_ip="127.0.0.51")
    host, port = edge.address
    try:
        padding = [f"X-Padding-{i}: {'a' * 90}" for i in range(100)]  # ~10 KB
        client.send(client.build("OPTIONS", f"sip:{host}:{port}", "big", "big", "oversized-1", 1,
                                 padding))
        answer = client.final(timeout=5)
        assert answer is not None and answer.status == 513
        assert client.options().status == 200  # a normal-sized message from it is fine
    finally:
        client.close()


def test_a_forged_in_dialog_invite_cannot_use_the_edge_as_a_relay(edge, reaper):
    """A to-tag and a Route header pointing at us do not make an INVITE part of one of our calls."""
    trunk = SipClient(edge.address, bind_port=edge.trunk_port)
    attacker = SipClient(edge.address, bind_ip="127.0.0.52")
    host, port = edge.address
    try:
        data = attacker.build("INVITE", f"sip:0044201234567@127.0.0.1:{edge.trunk_port}",
                              "attacker", "0044201234567", "forged-dialog-1", 1,
                              [f"Route: <sip:{host}:{port};lr>"])
        data = data.replace(b"To: <sip:0044201234567@127.0.0.1>",
                            b"To: <sip:0044201234567@127.0.0.1>;tag=forged")
        attacker.send(data)
        answer = attacker.final()
        assert answer is not None and answer.status == 403
        assert trunk.receive_request("INVITE", timeout=1) is None
    finally:
        trunk.close()
        attacker.close()


def test_a_forged_in_dialog_bye_is_not_relayed_either(edge):
    target = SipClient(edge.address, bind_ip="127.0.0.53")
    attacker = SipClient(edge.address, bind_ip="127.0.0.52")
    host, port = edge.address
    try:
        data = attacker.build("BYE", f"sip:victim@127.0.0.53:{target.port}", "attacker",
                              "victim", "forged-dialog-2", 1, [f"Route: <sip:{host}:{port};lr>"])
        attacker.send(data.replace(b"To: <sip:victim@127.0.0.1>",
                                   b"To: <sip:victim@127.0.0.1>;tag=forged"))
        answer = attacker.final()
        assert answer is not None and answer.status == 403
        assert target.receive_request("BYE", timeout=1) is None
    finally:
        target.close()
        attacker.close()
