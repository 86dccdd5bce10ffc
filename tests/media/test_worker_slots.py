"""A real worker's call slots after its legs end: pjsua keeps a hung-up leg's slot until the BYE
is answered; the worker says so (`slots_held`, before the `leg_ended`) and says when pjsua freed it.

The far end is a UDP socket of the test that answers INVITEs and, when told, stays silent to BYEs
(a phone gone from the network): with every slot held that way, the worker's next dial fails
(PJ_ETOOMANY) exactly as the report says it would, and succeeds once the report falls to 0.
"""

from __future__ import annotations

import re
import socket
import threading

import pytest

from callrouter.media import protocol as p
from callrouter.media.slot_events import SlotsHeld
from callrouter.media.worker.pjsua import TRANSACTION_TIMEOUT_MS
from tests.media.harness import WorkerProc

pytestmark = pytest.mark.integration

SDP = ("v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")


class Phone:
    """A SIP phone on a loopback UDP socket: answers every INVITE 200 with SDP; answers BYEs with
    200 only while `answers_bye` (else it has vanished: BYEs and their retransmissions go unanswered)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.answers_bye = True
        self.byes = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            try:
                data, peer = self.sock.recvfrom(65535)
            except (socket.timeout, OSError):
                continue
            text = data.decode("utf-8", "replace")
            method = text.split(" ", 1)[0]
            if method == "INVITE":
                self._reply(text, peer, "200 OK", SDP.format(port=self.port + 1))
            elif method == "BYE":
                self.byes += 1
                if self.answers_bye:
                    self._reply(text, peer, "200 OK", "")

    def _reply(self, request: str, peer: tuple[str, int], status: str, body: str) -> None:
        head, _, _ = request.partition("\r\n\r\n")
        lines = head.split("\r\n")[1:]
        keep = [line for line in lines if re.match(r"(?i)(via|from|call-id|cseq|to):", line)]
        keep = [line + ";tag=phone1" if line.lower().startswith("to:") and "tag=" not in line else line
                for line in keep]
        extra = ["Contact: <sip:phone@127.0.0.1:%d>" % self.port]
        if body:
            extra.append("Content-Type: application/sdp")
        message = "\r\n".join([f"SIP/2.0 {status}", *keep, *extra, f"Content-Length: {len(body)}", "", body])
        self.sock.sendto(message.encode(), peer)

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def phone():
    phone = Phone()
    yield phone
    phone.close()


def dial_and_answer(worker: WorkerProc, leg: str, phone: Phone) -> None:
    worker.send(p.Dial(leg=leg, uri=f"sip:phone@127.0.0.1:{phone.port}", timeout_seconds=10))
    worker.expect(p.LegState, leg=leg, state="confirmed")


def test_a_hung_up_legs_slot_is_said_held_before_its_end_and_free_once_its_bye_times_out(phone):
    worker = WorkerProc()
    dial_and_answer(worker, "a", phone)
    phone.answers_bye = False
    worker.send(p.Hangup(leg="a"))
    ended = worker.expect(p.LegEnded, leg="a")
    assert ended.by == "local"
    said = [e for e in worker.seen if isinstance(e, SlotsHeld)]
    assert said and said[-1].held == 1, "the slot pjsua still holds was not said before the leg's end"
    worker.expect(SlotsHeld, held=0, timeout=TRANSACTION_TIMEOUT_MS / 1000 + 15)


def test_slots_held_by_unanswered_byes_refuse_a_dial_until_pjsua_frees_them(phone):
    """Every slot held by a leg whose BYE nobody answers: the report says them all held, a dial
    then fails with 486 (pjsua's PJ_ETOOMANY), and once pjsip's transaction timeout freed them
    (TRANSACTION_TIMEOUT_MS, not the 32 s of RFC 3261's default) the report is 0 and a dial works."""
    worker = WorkerProc()
    cap = worker.ready.cap
    legs = [f"s{i}" for i in range(cap)]
    for leg in legs:
        dial_and_answer(worker, leg, phone)
    phone.answers_bye = False
    for leg in legs:
        worker.send(p.Hangup(leg=leg))
    for leg in legs:
        worker.expect(p.LegEnded, leg=leg)
    assert max(e.held for e in worker.seen if isinstance(e, SlotsHeld)) == cap
    worker.send(p.Dial(leg="refused", uri=f"sip:phone@127.0.0.1:{phone.port}"))
    refused = worker.expect(p.LegEnded, leg="refused")
    assert (refused.code, refused.by) == (486, "worker"), refused
    worker.expect(SlotsHeld, held=0, timeout=TRANSACTION_TIMEOUT_MS / 1000 + 15)
    assert phone.byes > cap, "the BYEs were not retransmitted: nothing was left unanswered"
    phone.answers_bye = True
    dial_and_answer(worker, "after", phone)
    worker.send(p.Hangup(leg="after"))
    worker.expect(p.LegEnded, leg="after")
