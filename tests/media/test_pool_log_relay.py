"""What the pool relays of a real worker's stderr into our log: pjsua's own lines too, which dump
whole SIP messages at higher log levels, and never with a caller's number in clear."""

from __future__ import annotations

import logging
import socket

import pytest
import pytest_twisted

from callrouter.media.pool import MediaPool
from callrouter.media.settings import MediaSettings
from tests.media.harness import Observer, free_udp_port
from tests.media.test_pool_workers import until

pytestmark = pytest.mark.integration

NUMBERS = (b"+33612345678", b"0033612345678", b"0612345678", b"06 12 34 56 78")
MALFORMED = (
    b"INVITE sip:+33612345678@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\n"
    b"From: <sip:0033612345678@127.0.0.1;tag=1\r\nTo: <<sip:0612345678@x>\r\nSubject: 06 12 34 56 78\r\n"
    b"Call-ID: 1\r\nCSeq: x INVITE\r\nContent-Length: 0\r\n\r\n")


@pytest_twisted.inlineCallbacks
def test_pjsua_dumping_a_malformed_message_reaches_our_log_with_its_numbers_masked(caplog):
    caplog.set_level(logging.DEBUG, logger="callrouter.media.pool")
    base = free_udp_port()
    settings = MediaSettings(legs_wanted=1, workers_min=1, workers_max=1, sip_port_base=base,
                             rtp_port_base=free_udp_port(even=True), rtp_ports_per_worker=100, pj_log_level=4)
    pool = MediaPool(settings, Observer())
    pool.startService()
    try:
        yield pool.when_ready()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(MALFORMED, ("127.0.0.1", base))
        relayed = lambda: [r.getMessage() for r in caplog.records if r.name == "callrouter.media.pool"]  # noqa: E731
        yield until(lambda: any("Dropped packet" in m for m in relayed())
                    and any("Content-Length" in m for m in relayed()), "pjsua's dump of the packet")
    finally:
        yield pool.stopService()
    lines = relayed()
    dump = [m for m in lines if "Subject:" in m or "sip:" in m]
    assert any("sip:+33*******78@" in m for m in dump), dump
    assert any("06**********78" in m for m in dump), dump
    for number in NUMBERS:
        assert not [m for m in lines if number.decode() in m], number


@pytest.mark.parametrize(("line", "relayed"), [
    ("sip:+33612345678@trunk", "sip:+33*******78@trunk"),
    ("From: <sip:0033612345678@h>", "From: <sip:00*********78@h>"),
    ("To: 06 12 34 56 78, 06.12.34.56.78", "To: 06**********78, 06**********78"),
    ("user %2B33612345678", "user %2B33*******78"),
    ("11:12:46.228 pjsua_core.c RX 512 bytes from 127.0.0.1:5060 pid 4242 192.168.100.200",
     "11:12:46.228 pjsua_core.c RX 512 bytes from 127.0.0.1:5060 pid 4242 192.168.100.200"),
    ("incoming call w0-4242-1 from +33*******78", "incoming call w0-4242-1 from +33*******78"),
])
def test_numbers_in_relayed_text_are_masked_and_other_figures_kept(line, relayed):
    from callrouter.domain.masking import mask_numbers_in

    assert mask_numbers_in(line) == relayed
