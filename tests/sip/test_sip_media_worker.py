"""The real pjsua2 media worker behind the real Kamailio: a trunk call is dispatched to it, and its
leg to a registered secretary is routed by Kamailio's location lookup."""

from __future__ import annotations

import pytest

from callrouter.media import protocol as p
from tests.media.harness import WorkerProc
from tests.sip.conftest import SIP_PASSWORD, TRUNK_IP
from tests.sip.harness import Sipp, wait_for
from tests.sip.sipclient import SipClient
from tests.sip.test_sip_routing import PRACTICE_NUMBER, active, worker_flags

pytestmark = pytest.mark.integration


def test_a_trunk_call_reaches_the_media_worker_which_dials_a_registered_secretary(edge, reaper):
    worker = WorkerProc(name="k0", sip_port=edge.sip.worker_ports()[0])
    secretary = SipClient(edge.address, bind_ip="127.0.0.91")
    try:
        assert wait_for(lambda: active(edge, 0)), worker_flags(edge)  # pjsua2 answers OPTIONS
        assert secretary.register("alice", SIP_PASSWORD, expires=600).status == 200
        caller = reaper.add(Sipp(edge.workdir, "kamailio_trunk_call.xml", local_ip=TRUNK_IP,
                                 remote=edge.address, calls=1, timeout_s=60,
                                 extra=["-s", PRACTICE_NUMBER], name="trunk-real"))
        call = worker.expect(p.IncomingCall)
        assert PRACTICE_NUMBER in call.to_uri
        assert not any(k.lower().startswith("x-callrouter") for k in call.headers)
        worker.send(p.Answer(leg=call.leg))
        worker.expect(p.LegState, leg=call.leg, state="confirmed")

        worker.send(p.Dial(leg="sec-1", uri=f"sip:alice@127.0.0.1:{edge.sip.udp_port}",
                           headers={"X-Callrouter-Call": "call-42"}, timeout_seconds=10))
        invite = secretary.receive_request("INVITE", timeout=10)
        assert invite is not None and "X-Callrouter-Call: call-42" in invite
        secretary.reply(invite, 486, "Busy Here")
        ended = worker.expect(p.LegEnded, leg="sec-1")
        assert "486" in str(ended)

        assert caller.wait(60) == 0, caller.errors()  # the caller hung up: BYE through Kamailio
        worker.expect(p.LegEnded, leg=call.leg)
    finally:
        secretary.close()
        worker.stop()
