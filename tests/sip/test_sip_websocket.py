"""SIP over secure WebSocket at the real Kamailio: the console's phone gets the same digest check,
registrar, size limit and flood ban as a softphone over UDP or TLS."""

from __future__ import annotations

import pytest

from callrouter.store.testing import fresh_database
from tests.sip.conftest import REALM, SIP_PASSWORD, add_edge_users, edge_settings
from tests.sip.harness import KAMAILIO, KamailioProc, free_port, wait_for
from tests.sip.sipclient import SipClient
from tests.sip.wsclient import Refused, WsSipClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wss_edge(tmp_path_factory):
    """Kamailio with a WSS socket, users alice (SIP password) and bob (disabled)."""
    if KAMAILIO is None:
        pytest.fail("kamailio is needed (scripts/ensure-system-deps)")
    workdir = tmp_path_factory.mktemp("wss-edge")
    with fresh_database("sqlite", workdir) as db:
        add_edge_users(db, (("alice", SIP_PASSWORD), ("bob", SIP_PASSWORD)))
        sip = edge_settings(wss_port=free_port(), rtpengine_ng_port=free_port(),
                            wss_origins=("https://127.0.0.1", "https://console.example.fr"))
        proc = KamailioProc(workdir, sip, REALM, db.url)
        try:
            yield proc
        finally:
            proc.stop()


def _wss(edge, bind_ip="127.0.0.1", origin: str | None = "") -> WsSipClient:
    return WsSipClient(("127.0.0.1", edge.sip.wss_port), bind_ip=bind_ip, origin=origin)


def test_a_browser_registers_over_wss_with_its_sip_password_and_lands_in_the_same_registrar(wss_edge):
    client = _wss(wss_edge, "127.0.0.61")
    try:
        answer = client.register("alice", SIP_PASSWORD)
        assert answer is not None and answer.status == 200, answer
        contacts = wss_edge.rpc.fetch()["alice"]
        ours = [c for c in contacts if client.contact_host in c.address]
        assert ours and ours[0].received and "127.0.0.61" in ours[0].received, contacts
        assert ours[0].socket == f"tls:127.0.0.1:{wss_edge.sip.wss_port}"
    finally:
        client.close()


def test_a_wrong_password_over_wss_is_refused_like_over_udp(wss_edge):
    ws = _wss(wss_edge, "127.0.0.62")
    udp = SipClient(("127.0.0.1", wss_edge.sip.udp_port), bind_ip="127.0.0.63")
    try:
        over_ws = ws.register("alice", "not-the-password")
        over_udp = udp.register("alice", "not-the-password")
        disabled = ws.register("bob", SIP_PASSWORD)
    finally:
        ws.close()
        udp.close()
    assert over_ws is not None and over_udp is not None and disabled is not None
    assert (over_ws.status, over_ws.reason) == (over_udp.status, over_udp.reason) == (401, "Unauthorized")
    assert disabled.status == 401
    assert "bob" not in wss_edge.rpc.fetch()


def test_an_oversized_message_over_wss_is_refused(wss_edge):
    client = _wss(wss_edge, "127.0.0.64")
    try:
        client.send_text(client.build("OPTIONS", "sip:127.0.0.1", "x", "big-call-id", 1,
                                      ["X-Padding: " + "a" * (wss_edge.sip.max_message_bytes + 100)]))
        answer = client.final()
    finally:
        client.close()
    assert answer is not None and answer.status == 513


def test_a_flood_over_wss_bans_its_source_and_another_browser_still_registers(wss_edge):
    flooder = _wss(wss_edge, "127.0.0.65")
    try:
        for i in range(wss_edge.sip.flood_max_requests * 3):
            flooder.send_text(flooder.build("OPTIONS", "sip:127.0.0.1", "flood", f"flood-{i}", 1))
        assert wait_for(lambda: "flood from 127.0.0.65, banned" in wss_edge.log_text())
        while flooder.receive_text(timeout=1) is not None:
            pass  # the answers to the requests before the ban
        assert flooder.options(timeout=2) is None  # banned: silence on its open connection
    finally:
        flooder.close()
    with pytest.raises(Refused):  # and no new connection
        _wss(wss_edge, "127.0.0.65").close()
    banned_udp = SipClient(("127.0.0.1", wss_edge.sip.udp_port), bind_ip="127.0.0.65")
    other = _wss(wss_edge, "127.0.0.66")
    try:
        assert banned_udp.options(timeout=2) is None  # the same ban as for UDP
        assert other.register("alice", SIP_PASSWORD).status == 200
    finally:
        banned_udp.close()
        other.close()


def test_http_on_the_wss_port_without_an_upgrade_gets_404_and_no_rpc(wss_edge):
    import socket
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", wss_edge.sip.wss_port), timeout=10)
    with context.wrap_socket(raw) as tls:
        body = b'{"jsonrpc":"2.0","method":"core.version","id":1}'
        tls.sendall(b"POST /RPC HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        data = tls.recv(65535)
    assert data.startswith(b"HTTP/1.1 404"), data[:80]


def test_only_the_consoles_origins_may_open_the_websocket(wss_edge):
    """sip.wss_origins: a page of the console (either origin) connects and registers; a page of
    another site gets 403 and no WebSocket, however near its name, and the address is not banned
    for it; a client sending no Origin (not a browser) is let through to the digest check."""
    for origin in ("https://evil.example", "https://console.example.fr.evil.example", "http://127.0.0.1",
                   "https://127.0.0.1:8443", "null"):
        with pytest.raises(Refused, match=" 403 "):
            _wss(wss_edge, "127.0.0.71", origin=origin)
    for origin in ("https://console.example.fr", "https://127.0.0.1", None):
        client = _wss(wss_edge, "127.0.0.71", origin=origin)
        try:  # a wrong password: the SIP got through to the digest check (alice's contacts stay as they are)
            answer = client.register("alice", "not-the-password")
            assert answer is not None and answer.status == 401, (origin, answer)
        finally:
            client.close()
