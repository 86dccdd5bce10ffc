"""An INVITE whose headers are not UTF-8, sent by the trunk through the real Kamailio to the real
pjsua2 worker: the call gets its normal answer, and the worker keeps all its call slots."""

from __future__ import annotations

import pytest

from callrouter.media import protocol as p
from tests.media.harness import RawSipCaller, WorkerProc
from tests.sip.conftest import TRUNK_IP
from tests.sip.harness import wait_for
from tests.sip.test_sip_routing import PRACTICE_NUMBER, active, worker_flags

pytestmark = pytest.mark.integration

LATIN1_NAME = b"Ren\xe9e M\xfcller \xff"


def _round(edge, worker, calls: int) -> None:
    """`calls` hostile trunk calls at once (what the dispatcher sends one worker): the first is
    answered and hung up by the caller, the others refused 480; every leg ends."""
    callers = [RawSipCaller(edge.address, bind_ip=TRUNK_IP) for _ in range(calls)]
    try:
        for caller in callers:
            caller.invite(PRACTICE_NUMBER, "0612345678", display=LATIN1_NAME, extra=b"X-Note: caf\xe9\r\n")
        legs = [worker.expect(p.IncomingCall) for _ in callers]
        assert {call.caller_name for call in legs} == {"Ren\ufffde M\ufffdller \ufffd"}
        answered, *refused = legs
        worker.send(p.Answer(leg=answered.leg))
        for call in refused:
            worker.send(p.Hangup(leg=call.leg, code=480))
        statuses = []
        for caller in callers:
            status, headers = caller.final()
            caller.ack(status, headers)
            statuses.append(status)
        assert sorted(statuses) == [200] + [480] * len(refused)
        worker.expect(p.LegState, leg=answered.leg, state="confirmed")
        assert callers[statuses.index(200)].bye() == 200
        for call in legs:  # some may have ended while the test waited for another event
            if not any(isinstance(e, p.LegEnded) and e.leg == call.leg for e in worker.seen):
                worker.expect(p.LegEnded, leg=call.leg)
    finally:
        for caller in callers:
            caller.close()


def test_non_utf8_trunk_calls_through_the_edge_are_answered_and_free_the_workers_slots(edge):
    worker = WorkerProc(name="h0", sip_port=edge.sip.worker_ports()[0])
    try:
        assert wait_for(lambda: active(edge, 0)), worker_flags(edge)
        per_worker = max(1, worker.ready.cap // 2)  # the dispatcher's load limit for one worker
        for _ in range(3):  # were a slot kept by a call, a later round would find the worker full
            _round(edge, worker, per_worker)
    finally:
        worker.stop()
