"""The WebRTC settings of the edge: checked once, rendered only when the WSS port is set."""

from __future__ import annotations

import dataclasses
from pathlib import Path

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


def test_the_wss_origins_render_an_anchored_check_and_star_or_none_render_none():
    lines = webrtc.generated_lines(SipSettings(wss_port=8443, wss_origins=("https://console.example.fr",
                                                                           "https://[::1]:8080")))
    assert "#!define WITH_WSS_ORIGINS" in lines
    assert '#!substdef "!WSS_ORIGINS!https://console[.]example[.]fr|https://[[]::1[]]:8080!g"' in lines
    for origins in ((), ("*",)):
        assert "#!define WITH_WSS_ORIGINS" not in webrtc.generated_lines(SipSettings(wss_port=8443,
                                                                                    wss_origins=origins))


def test_a_wss_origin_must_be_a_scheme_and_host_only():
    for bad in ("console.example.fr", "https://console.example.fr/", "https://Console.example.fr",
                "ftp://x", "https://a!b", "https://x:8443/path"):
        assert any("sip.wss_origins[0]" in p for p in SipSettings(wss_port=8443, wss_origins=(bad,)).problems()), bad
    assert SipSettings(wss_port=8443, wss_origins=("https://console.example.fr", "http://127.0.0.1:8080",
                                                   "https://[::1]:8080", "*")).problems() == []


def test_the_consoles_own_origins_are_derived_from_its_address_and_console_url():
    assert webrtc.console_origins("127.0.0.1", 8080, True, "https://127.0.0.1:8080/console") == (
        "https://127.0.0.1:8080", "https://localhost:8080")
    assert webrtc.console_origins("0.0.0.0", 443, True, "https://Secretariat.example.fr/console") == (
        "https://secretariat.example.fr", "https://127.0.0.1", "https://localhost")
    assert webrtc.console_origins("192.0.2.10", 80, False, "") == ("http://192.0.2.10",)


def test_the_daemon_gives_the_edge_the_consoles_origins_unless_the_settings_name_them():
    from callrouter.config import HttpSettings, Settings

    settings = Settings(http=HttpSettings(port=8443, tls_cert=Path("c.pem"), tls_key=Path("k.pem")))
    assert "https://127.0.0.1:8443" in settings.edge.wss_origins
    named = dataclasses.replace(settings, sip=SipSettings(wss_origins=("https://console.example.fr",)))
    assert named.edge.wss_origins == ("https://console.example.fr",)
