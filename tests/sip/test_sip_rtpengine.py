"""rtpengine under the edge: started and stopped with Kamailio when WSS is on, and driven by it for
the legs that reach a browser only: DTLS-SRTP/ICE/rtcp-mux towards the browser, plain RTP/AVP
towards the worker."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess

import pytest
import pytest_twisted
from argon2 import PasswordHasher
from twisted.internet import reactor

from callrouter.auth import passwords
from callrouter.sip import rtpengine
from callrouter.sip.service import KamailioService
from callrouter.store.testing import fresh_database
from callrouter.store.users import UserRepository
from tests.sip.conftest import ADMIN, REALM, SIP_PASSWORD, edge_settings
from tests.sip.harness import KAMAILIO, KamailioProc, free_port, wait_for
from tests.sip.sipclient import SipClient
from tests.sip.test_sip_service import eventually, group_alive
from tests.sip.wsclient import WsSipClient

pytestmark = pytest.mark.integration

RTPENGINE = shutil.which("rtpengine")


def _need_parts() -> None:
    if KAMAILIO is None or RTPENGINE is None:
        pytest.fail("kamailio and rtpengine are needed (scripts/ensure-system-deps)")


@pytest_twisted.ensureDeferred
async def test_the_edge_service_starts_rtpengine_with_wss_restarts_it_and_stops_it(tmp_path):
    _need_parts()
    with fresh_database("sqlite", tmp_path) as db:
        sip = edge_settings(wss_port=free_port(), rtpengine_ng_port=free_port(),
                            rtpengine_port_min=41000, rtpengine_port_max=41099)
        svc = KamailioService(sip, realm=REALM, database_url=db.url, config_dir=tmp_path / "k",
                              reactor=reactor, base=tmp_path, stop_grace=5)
        assert svc.rtpengine is not None
        svc.startService()
        try:
            assert await eventually(lambda: rtpengine.answers_ping(sip.rtpengine_ng_port))
            first = svc.rtpengine.pid
            cmdline = open(f"/proc/{first}/cmdline", "rb").read().split(b"\0")
            assert b"--table=-1" in cmdline and b"--port-min=41000" in cmdline
            os.killpg(first, signal.SIGKILL)
            assert await eventually(lambda: svc.rtpengine.starts == 2 and svc.rtpengine.pid not in (None, first))
            assert await eventually(lambda: rtpengine.answers_ping(sip.rtpengine_ng_port))
            second = svc.rtpengine.pid
        finally:
            await svc.stopService()
        assert svc.rtpengine.pid is None and svc.pid is None
        assert await eventually(lambda: not group_alive(first) and not group_alive(second))
        assert not rtpengine.answers_ping(sip.rtpengine_ng_port)


def test_without_wss_the_edge_has_no_rtpengine(tmp_path):
    svc = KamailioService(edge_settings(), realm=REALM, database_url="sqlite:///x.db",
                          config_dir=tmp_path / "k", reactor=reactor, base=tmp_path)
    assert svc.rtpengine is None


@pytest.fixture(scope="module")
def media_edge(tmp_path_factory):
    """rtpengine, then Kamailio with WSS, user alice; (kamailio, settings)."""
    _need_parts()
    workdir = tmp_path_factory.mktemp("rtp-edge")
    with fresh_database("sqlite", workdir) as db:
        hasher = passwords._hasher
        passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        try:
            UserRepository(db, sip_realm=REALM).add(
                ADMIN, "alice", "Alice", "secretary", "Console-Passw0rd-long!",
                dt.datetime.now(dt.timezone.utc), sip_password=SIP_PASSWORD)
        finally:
            passwords._hasher = hasher
        sip = edge_settings(wss_port=free_port(), rtpengine_ng_port=free_port(),
                            rtpengine_port_min=42000, rtpengine_port_max=42099)
        log = open(workdir / "rtpengine.log", "ab")
        rtp = subprocess.Popen(rtpengine.command(sip, workdir / "rtpengine.pid"), stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
        try:
            assert wait_for(lambda: rtpengine.answers_ping(sip.rtpengine_ng_port)), "rtpengine did not start"
            proc = KamailioProc(workdir, sip, REALM, db.url)
            try:
                yield proc
            finally:
                proc.stop()
        finally:
            os.killpg(rtp.pid, signal.SIGTERM)
            rtp.wait(10)
            log.close()


WORKER_SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
              "m=audio 40010 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
              "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
BROWSER_ANSWER = (
    "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=audio 45000 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=ice-ufrag:wxyz\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\na=setup:active\r\na=mid:0\r\n"
    "a=rtcp-mux\r\na=candidate:1 1 udp 2113937151 127.0.0.1 45000 typ host\r\na=sendrecv\r\n")


def _ports(sdp: str) -> list[int]:
    return [int(p) for p in re.findall(r"^m=audio (\d+)", sdp, re.M)]


def _reply_over_ws(ws: WsSipClient, invite: str, body: str) -> None:
    head = invite.split("\r\n\r\n", 1)[0].split("\r\n")
    keep = [line for line in head[1:] if line.split(":", 1)[0].strip().lower() in
            ("via", "from", "call-id", "cseq", "record-route")]
    to = next(line for line in head if line.lower().startswith("to:")) + ";tag=browser1"
    ws.send_text("\r\n".join([
        "SIP/2.0 200 OK", *keep, to, f"Contact: <sip:alice@{ws.contact_host};transport=ws>",
        "Content-Type: application/sdp", f"Content-Length: {len(body)}", "", body]))


def test_a_worker_leg_to_a_browser_gets_webrtc_sdp_and_the_worker_gets_plain_rtp_back(media_edge):
    sip = media_edge.sip
    browser = WsSipClient(("127.0.0.1", sip.wss_port), bind_ip="127.0.0.71")
    worker = SipClient(("127.0.0.1", sip.udp_port), bind_port=sip.worker_ports()[0])
    try:
        assert browser.register("alice", SIP_PASSWORD).status == 200
        worker.send(worker.build("INVITE", f"sip:alice@127.0.0.1:{sip.udp_port}", "callrouter",
                                 "alice", "webrtc-call-1", 1, body=WORKER_SDP))
        invite = None
        while invite is None or not invite.startswith("INVITE "):
            invite = browser.receive_text(timeout=10)
            assert invite is not None, "no INVITE reached the browser"
        offer = invite.split("\r\n\r\n", 1)[1]
        assert "RTP/SAVPF" in offer and "a=ice-ufrag:" in offer and "a=fingerprint:" in offer
        assert "a=rtcp-mux" in offer and "a=candidate:" in offer
        assert all(42000 <= p <= 42099 for p in _ports(offer)) and 40010 not in _ports(offer)
        _reply_over_ws(browser, invite, BROWSER_ANSWER)
        answer = worker.final(timeout=10)
        assert answer is not None and answer.status == 200, answer
        body = answer.raw.split("\r\n\r\n", 1)[1]
        assert "RTP/AVP" in body and "SAVPF" not in body and "ice-ufrag" not in body
        assert "fingerprint" not in body and all(42000 <= p <= 42099 for p in _ports(body))
        contact = answer.header("Contact") or ""
        assert ";alias=127.0.0.71~" in contact  # in-dialog requests find the browser's connection
    finally:
        browser.close()
        worker.close()


def test_a_secretary_on_a_softphone_and_in_the_browser_gets_plain_sdp_on_one_and_webrtc_on_the_other(media_edge):
    """One branch per contact: rtpengine only on the browser's."""
    sip = media_edge.sip
    browser = WsSipClient(("127.0.0.1", sip.wss_port), bind_ip="127.0.0.72")
    softphone = SipClient(("127.0.0.1", sip.udp_port), bind_ip="127.0.0.73")
    worker = SipClient(("127.0.0.1", sip.udp_port), bind_port=sip.worker_ports()[1])
    try:
        assert browser.register("alice", SIP_PASSWORD).status == 200
        assert softphone.register("alice", SIP_PASSWORD).status == 200
        worker.send(worker.build("INVITE", f"sip:alice@127.0.0.1:{sip.udp_port}", "callrouter",
                                 "alice", "webrtc-fork-1", 1, body=WORKER_SDP))
        plain = softphone.receive_request("INVITE", timeout=10)
        assert plain is not None, "no INVITE reached the softphone"
        invite = None
        while invite is None or not invite.startswith("INVITE "):
            invite = browser.receive_text(timeout=10)
            assert invite is not None, "no INVITE reached the browser"
        assert "m=audio 40010 RTP/AVP" in plain and "ice-ufrag" not in plain  # untouched
        assert "RTP/SAVPF" in invite.split("\r\n\r\n", 1)[1]
    finally:
        browser.close()
        softphone.close()
        worker.close()
