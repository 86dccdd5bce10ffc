"""A real worker receiving INVITEs whose headers are not UTF-8 (SIP does not require it: a Latin-1
display name from an old PBX): the call is reported with safe text, answered, and frees its slot."""

from __future__ import annotations

import pytest

from callrouter.media import protocol as p
from tests.media.harness import RawSipCaller, WorkerProc

pytestmark = pytest.mark.integration

PRACTICE = "+33142000001"
CALLER = "+33612345678"
LATIN1_NAME = b"Ren\xe9e M\xfcller \xff"        # "Renée Müller" in Latin-1, and a byte no charset has


@pytest.fixture
def worker():
    w = WorkerProc()
    yield w
    assert w.stop() == 0, "".join(w.stderr_lines[-30:])


def test_a_non_utf8_invite_is_reported_with_safe_text_answered_and_hung_up(worker):
    caller = RawSipCaller(("127.0.0.1", worker.sip_port))
    try:
        caller.invite(PRACTICE, CALLER, display=LATIN1_NAME, extra=b"X-Note: caf\xe9\r\n")
        call = worker.expect(p.IncomingCall)
        assert (call.number, call.caller) == (PRACTICE, CALLER)
        assert call.caller_name == "Ren\ufffde M\ufffdller \ufffd"
        assert call.headers["X-Note"] == "caf\ufffd"
        worker.send(p.Answer(leg=call.leg))
        status, headers = caller.final()
        assert status == 200
        caller.ack(status, headers)
        worker.expect(p.LegState, leg=call.leg, state="confirmed")
        assert caller.bye() == 200
        assert worker.expect(p.LegEnded, leg=call.leg).by == "remote"
    finally:
        caller.close()
    assert not [line for line in worker.stderr_lines if "Traceback" in line], "".join(worker.stderr_lines)


def test_every_call_slot_takes_a_non_utf8_invite_then_a_plain_call(worker):
    """As many hostile INVITEs as the worker has slots are all reported and refused on command;
    none is left ringing, so the next call is reported too."""
    callers = [RawSipCaller(("127.0.0.1", worker.sip_port)) for _ in range(worker.ready.cap)]
    try:
        for caller in callers:
            caller.invite(PRACTICE, CALLER, display=LATIN1_NAME)
        legs = [worker.expect(p.IncomingCall, timeout=10).leg for _ in callers]
        for leg in legs:
            worker.send(p.Hangup(leg=leg, code=480))
        for caller in callers:
            status, headers = caller.final()
            assert status == 480
            caller.ack(status, headers)
        for leg in legs:  # some may have ended while the test waited for another event
            if not any(isinstance(e, p.LegEnded) and e.leg == leg for e in worker.seen):
                worker.expect(p.LegEnded, leg=leg)
        last = RawSipCaller(("127.0.0.1", worker.sip_port))
        callers.append(last)
        last.invite(PRACTICE, CALLER, display=b"Patient")
        call = worker.expect(p.IncomingCall, timeout=10)
        worker.send(p.Hangup(leg=call.leg, code=486))
        assert last.final()[0] == 486
    finally:
        for caller in callers:
            caller.close()
