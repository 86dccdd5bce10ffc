"""The WebRTC settings of the edge: checked once, rendered only when the WSS port is set."""

from __future__ import annotations

from callrouter.sip import webrtc
from callrouter.sip.settings import SipSettings


def test_wss_is_off_by_default_and_renders_nothing():
    assert webrtc.generated_lines(SipSettings()) == []


def test_a_wss_port_renders_the_socket_and_rtpengine_control():
    lines = webrtc.generated_lines(SipSettings(wss_port=8443, rtpengine_ng_port=2300))
    assert "listen=tls:127.0.0.1:8443" in lines
    assert '#!define RTPENGINE_SOCK "udp:127.0.0.1:2300"' in lines
    assert "#!define WSS_PORT 8443" in lines


def test_wss_needs_tls_and_a_port_of_its_own_and_a_sane_rtp_range():
    problems = SipSettings(wss_port=5061, rtpengine_port_min=40000, rtpengine_port_max=30000).problems()
    assert any("must differ" in p for p in problems)
    assert any("rtpengine_port_min/max" in p for p in problems)
    assert any("needs sip.tls_port" in p for p in SipSettings(wss_port=8443, tls_port=0).problems())
    assert SipSettings(wss_port=8443).problems() == []
