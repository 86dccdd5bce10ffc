"""Calls through the real Kamailio: trunk -> media workers (load, failover, probes), secretaries'
callbacks -> the outbound trunk, toll-fraud refusals. SIPp stands in for workers and trunks."""

from __future__ import annotations

import threading

import pytest

from tests.sip.conftest import SIP_PASSWORD, TRUNK_IP
from tests.sip.harness import Sipp, wait_for
from tests.sip.sipclient import SDP, SipClient

pytestmark = pytest.mark.integration

PRACTICE_NUMBER = "+33142000001"


def start_worker(edge, reaper, index: int, calls: int | None = None) -> Sipp:
    """A SIPp UAS on worker port `index`, answering OPTIONS probes (-aa)."""
    return reaper.add(Sipp(edge.workdir, "kamailio_worker_uas.xml", port=edge.sip.worker_ports()[index],
                           calls=calls, extra=["-aa"], timeout_s=120, name=f"worker{index}"))


def worker_flags(edge) -> dict[int, str]:
    """{worker port: dispatcher flags}, e.g. "AP" active+probing, "IP" inactive+probing."""
    result = edge.kamailio.rpc.call("dispatcher.list")
    flags = {}
    for record in result["RECORDS"]:
        for target in record["SET"]["TARGETS"]:
            dest = target["DEST"]
            flags[int(dest["URI"].rsplit(":", 1)[1])] = dest["FLAGS"]
    return flags


def active(edge, index: int) -> bool:
    return worker_flags(edge).get(edge.sip.worker_ports()[index], "").startswith("A")


def trunk_calls(edge, reaper, calls: int) -> Sipp:
    return reaper.add(Sipp(edge.workdir, "kamailio_trunk_call.xml", local_ip=TRUNK_IP,
                           remote=edge.address, calls=calls, rate=5, timeout_s=60,
                           extra=["-s", PRACTICE_NUMBER], name="trunk"))


def test_trunk_calls_are_dispatched_to_the_workers_by_load(edge, reaper):
    workers = [start_worker(edge, reaper, i) for i in range(2)]
    assert wait_for(lambda: active(edge, 0) and active(edge, 1)), worker_flags(edge)
    caller = trunk_calls(edge, reaper, 6)
    assert caller.wait(60) == 0, caller.errors() + edge.kamailio.log_tail()
    counts = [w.received("INVITE") for w in workers]
    assert sum(counts) == 6 and all(counts), counts
    traces = "".join(w.messages.read_text(errors="replace") for w in workers)
    assert "forged-by-the-trunk" not in traces  # a trunk cannot forge our headers


def test_a_call_from_an_untrusted_address_is_not_dispatched(edge, reaper):
    workers = [start_worker(edge, reaper, i) for i in range(2)]
    assert wait_for(lambda: active(edge, 0) and active(edge, 1)), worker_flags(edge)
    client = SipClient(edge.address, bind_ip="127.0.0.2")
    try:
        response = client.request("INVITE", f"sip:{PRACTICE_NUMBER}@127.0.0.1:{edge.sip.udp_port}",
                                  "0612345678", PRACTICE_NUMBER, body=SDP)
    finally:
        client.close()
    assert response is not None and response.status == 407  # must authenticate as a secretary
    assert [w.received("INVITE") for w in workers] == [0, 0]


def test_a_worker_that_stops_answering_is_skipped_and_marked_inactive(edge, reaper):
    workers = [start_worker(edge, reaper, i) for i in range(2)]
    assert wait_for(lambda: active(edge, 0) and active(edge, 1)), worker_flags(edge)
    workers[0].kill()
    caller = trunk_calls(edge, reaper, 4)
    assert caller.wait(60) == 0, caller.errors() + edge.kamailio.log_tail()
    assert workers[1].received("INVITE") == 4
    assert wait_for(lambda: not active(edge, 0)), worker_flags(edge)
    # back again: the OPTIONS probes make it active
    start_worker(edge, reaper, 0)
    assert wait_for(lambda: active(edge, 0)), worker_flags(edge)


def test_a_secretary_calls_a_french_number_through_the_outbound_trunk(edge, reaper):
    trunk = reaper.add(Sipp(edge.workdir, "kamailio_trunk_uas.xml", port=edge.trunk_port,
                            calls=1, timeout_s=30, name="outbound"))
    client = SipClient(edge.address, bind_ip="127.0.0.21")
    try:
        response = client.request("INVITE", f"sip:0142000001@127.0.0.1:{edge.sip.udp_port}",
                                  "alice", "0142000001", password=SIP_PASSWORD, body=SDP,
                                  extra=["X-Callrouter-Call-Id: call-42"], timeout=10)
    finally:
        client.close()
    assert response is not None and response.status == 486, edge.kamailio.log_tail()
    assert trunk.wait(30) == 0, trunk.errors()


@pytest.mark.parametrize("number", ["0891234567", "0836123456", "+447700900123", "0044201234567",
                                    "+33891234567", "3615", "112", "0033142000001"])
def test_a_secretary_cannot_call_premium_international_or_short_numbers(edge, number):
    client = SipClient(edge.address, bind_ip="127.0.0.22")
    try:
        response = client.request("INVITE", f"sip:{number}@127.0.0.1:{edge.sip.udp_port}",
                                  "alice", number, password=SIP_PASSWORD, body=SDP)
    finally:
        client.close()
    assert response is not None and (response.status, response.reason) == \
        (403, "Destination Not Allowed")
    log = edge.kamailio.log_text()
    if len(number) > 6:  # the first 4 and last 2 digits only
        assert f"refused a call from alice to {number[:4]}****{number[-2:]}" in log
        assert number not in log
    else:
        assert "refused a call from alice to ****:" in log


def test_a_worker_leg_reaches_the_registered_secretary(edge):
    """A worker dials a secretary by username: Kamailio finds her registered contact."""
    secretary = SipClient(edge.address, bind_ip="127.0.0.61")
    worker = SipClient(edge.address, bind_port=edge.sip.worker_ports()[1])
    try:
        assert secretary.register("alice", SIP_PASSWORD, expires=600).status == 200
        worker.send(worker.build("INVITE", f"sip:alice@127.0.0.1:{edge.sip.udp_port}", "worker1",
                                 "alice", "worker-leg-1", 1, ["X-Callrouter-Call-Id: call-77"], SDP))
        invite = secretary.receive_request("INVITE")
        assert invite is not None, edge.kamailio.log_tail()
        assert "X-Callrouter-Call-Id: call-77" in invite
        secretary.reply(invite, 486, "Busy Here")
        answer = worker.final()
        assert answer is not None and answer.status == 486
    finally:
        secretary.close()
        worker.close()


def test_a_worker_leg_to_a_number_goes_to_the_outbound_trunk(edge, reaper):
    trunk = SipClient(edge.address, bind_port=edge.trunk_port)
    worker = SipClient(edge.address, bind_port=edge.sip.worker_ports()[0])
    try:
        worker.send(worker.build("INVITE", f"sip:0612345678@127.0.0.1:{edge.sip.udp_port}",
                                 "worker0", "0612345678", "worker-leg-2", 1, [], SDP))
        invite = trunk.receive_request("INVITE")
        assert invite is not None and invite.startswith("INVITE sip:0612345678@127.0.0.1:"), \
            edge.kamailio.log_tail()
        trunk.reply(invite, 486, "Busy Here")
        answer = worker.final()
        assert answer is not None and answer.status == 486
    finally:
        trunk.close()
        worker.close()


def test_an_unregistered_secretary_is_unavailable_to_a_worker(edge):
    worker = SipClient(edge.address, bind_port=edge.sip.worker_ports()[0])
    try:
        worker.send(worker.build("INVITE", f"sip:carol@127.0.0.1:{edge.sip.udp_port}", "worker0",
                                 "carol", "worker-leg-3", 1, [], SDP))
        answer = worker.final()
        assert answer is not None and answer.status == 480
    finally:
        worker.close()


def test_a_malformed_call_record_header_from_a_secretary_is_dropped(edge):
    trunk = SipClient(edge.address, bind_port=edge.trunk_port)
    client = SipClient(edge.address, bind_ip="127.0.0.23")
    try:
        result: dict = {}

        def answer_on_trunk():
            invite = trunk.receive_request("INVITE", timeout=10)
            result["invite"] = invite
            if invite:
                trunk.reply(invite, 486, "Busy Here")

        answering = threading.Thread(target=answer_on_trunk)
        answering.start()
        response = client.request("INVITE", f"sip:0142000002@127.0.0.1:{edge.sip.udp_port}",
                                  "alice", "0142000002", password=SIP_PASSWORD, body=SDP,
                                  extra=["X-Callrouter-Call-Id: <script>x</script>"], timeout=10)
        answering.join(timeout=15)
        assert response is not None and response.status == 486
        assert result["invite"] and "X-Callrouter-Call-Id" not in result["invite"]
    finally:
        trunk.close()
        client.close()


def test_while_the_controller_lags_the_edge_refuses_new_calls_at_once_with_retry_after(edge, reaper):
    from twisted.internet import defer, task

    from callrouter.sip.dispatch import EdgeDispatcher

    worker = start_worker(edge, reaper, 0)
    assert wait_for(lambda: active(edge, 0)), worker_flags(edge)
    dispatcher = EdgeDispatcher(edge.kamailio.rpc, edge.sip, task.Clock(),
                                in_thread=lambda fn, *args: defer.maybeDeferred(fn, *args))
    refused_before = dispatcher.refused().result
    assert isinstance(refused_before, int)  # counted from the edge's start, whatever ran before
    assert dispatcher.shed(True).result is True
    try:
        client = SipClient(edge.address, bind_ip=TRUNK_IP)
        try:
            response = client.request("INVITE", f"sip:{PRACTICE_NUMBER}@127.0.0.1:{edge.sip.udp_port}",
                                      "0612345678", PRACTICE_NUMBER, body=SDP)
        finally:
            client.close()
        assert response is not None and (response.status, response.reason) == (503, "Overloaded")
        assert response.header("Retry-After") == "2"
        assert worker.received("INVITE") == 0
        assert dispatcher.refused().result == refused_before + 1  # callrouter_media_calls_shed_total
    finally:
        assert dispatcher.shed(False).result is True
    caller = trunk_calls(edge, reaper, 2)
    assert caller.wait(60) == 0, caller.errors() + edge.kamailio.log_tail()
    assert worker.received("INVITE") == 2
