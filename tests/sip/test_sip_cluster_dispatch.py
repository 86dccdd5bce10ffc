"""Two nodes' edges dispatching across nodes: their own workers first, then the other node's.

The real edges of tests/sip/test_sip_cluster.py, real `callrouter.media.worker` processes (pjsua2)
as the nodes' media workers, SIPp as the trunk forwarding a practice's call.
"""

from __future__ import annotations

import os
import signal

import pytest

from callrouter.media import protocol as p
from tests.media.harness import WorkerProc
from tests.sip.conftest import TRUNK_IP
from tests.sip.harness import Sipp, wait_for
from tests.sip.sipclient import SDP, SipClient
from tests.sip.test_sip_cluster import cluster, dispatcher_flags, peer_flags  # noqa: F401 (fixture)
from tests.sip.test_sip_routing import PRACTICE_NUMBER

pytestmark = pytest.mark.integration


def worker_active(node, index: int = 0) -> bool:
    uri = f"sip:{node.sip.worker_host}:{node.sip.worker_ports()[index]}"
    return dispatcher_flags(node, 1).get(uri, "").startswith("A")


def trunk_call(cluster, node) -> Sipp:
    return Sipp(cluster.workdir, "kamailio_trunk_call.xml", local_ip=TRUNK_IP, remote=node.address,
                calls=1, timeout_s=60, extra=["-s", PRACTICE_NUMBER], name="trunk")


def answer(worker: WorkerProc) -> None:
    """The worker takes the dispatched call, answers it and sees the caller hang up."""
    call = worker.expect(p.IncomingCall)
    assert PRACTICE_NUMBER in call.to_uri
    assert not any(k.lower().startswith("x-callrouter") for k in call.headers)
    worker.send(p.Answer(leg=call.leg))
    worker.expect(p.LegState, leg=call.leg, state="confirmed")
    worker.expect(p.LegEnded, leg=call.leg)


def test_a_call_no_worker_of_node_a_can_take_goes_to_a_worker_of_node_b(cluster):
    a, b = cluster.a, cluster.b
    worker = WorkerProc(name="b0", sip_port=b.sip.worker_ports()[0])
    try:
        assert wait_for(lambda: worker_active(b)), dispatcher_flags(b, 1)
        assert not any(f.startswith("A") for f in dispatcher_flags(a, 1).values())  # A has none
        caller = trunk_call(cluster, a)
        answer(worker)
        assert caller.wait(60) == 0, caller.errors() + a.kamailio.log_tail()
        assert f"offered to the edge at sip:{b.ip}:{b.sip.udp_port}" in a.kamailio.log_text()
    finally:
        worker.stop()


def test_with_node_b_worker_killed_a_call_at_edge_b_goes_to_a_worker_of_node_a(cluster):
    a, b = cluster.a, cluster.b
    a_worker = WorkerProc(name="a0", sip_port=a.sip.worker_ports()[0])
    b_worker = WorkerProc(name="b0", sip_port=b.sip.worker_ports()[0])
    try:
        assert wait_for(lambda: worker_active(a) and worker_active(b))
        b_worker.proc.kill()  # SIGKILL: B's edge still believes it active, the call times out there
        b_worker.proc.wait(timeout=10)
        caller = trunk_call(cluster, b)
        answer(a_worker)
        assert caller.wait(60) == 0, caller.errors() + b.kamailio.log_tail()
        assert not worker_active(b)  # the silent worker was marked inactive at once
        assert f"offered to the edge at sip:{a.ip}:{a.sip.udp_port}" in b.kamailio.log_text()
    finally:
        a_worker.stop()
        b_worker.stop()


def test_a_dead_node_stops_being_offered_calls(cluster):
    """Node B's edge killed outright: the first call A cannot place waits one answer timeout for
    it, which marks it inactive; the next ones are refused at once, and B is tried again once its
    probes are answered."""
    a, b = cluster.a, cluster.b
    os.killpg(b.kamailio.proc.pid, signal.SIGKILL)
    b.kamailio.proc.wait(timeout=10)
    client = SipClient(a.address, bind_ip=TRUNK_IP)
    try:
        first = client.request("INVITE", f"sip:{PRACTICE_NUMBER}@{a.ip}:{a.sip.udp_port}", "0612345678",
                               PRACTICE_NUMBER, body=SDP, timeout=15)
        assert first is not None and first.status in (408, 503), a.kamailio.log_tail()
        assert not any(f.startswith("A") for f in peer_flags(a).values()), peer_flags(a)
        second = client.request("INVITE", f"sip:{PRACTICE_NUMBER}@{a.ip}:{a.sip.udp_port}", "0612345678",
                                PRACTICE_NUMBER, body=SDP, timeout=15)
        assert second is not None and (second.status, second.reason) == (503, "No Worker Available")
    finally:
        client.close()


def test_a_dead_node_is_found_by_its_edge_probes_without_any_call(cluster):
    a, b = cluster.a, cluster.b
    os.killpg(b.kamailio.proc.pid, signal.SIGKILL)
    b.kamailio.proc.wait(timeout=10)
    # probes every second, each giving up after the worker answer timeout (1.5 s here), not 30 s
    assert wait_for(lambda: not any(f.startswith("A") for f in peer_flags(a).values()), timeout=10), \
        peer_flags(a)
    client = SipClient(a.address, bind_ip=TRUNK_IP)
    try:
        refused = client.request("INVITE", f"sip:{PRACTICE_NUMBER}@{a.ip}:{a.sip.udp_port}", "0612345678",
                                 PRACTICE_NUMBER, body=SDP, timeout=15)
        assert refused is not None and (refused.status, refused.reason) == (503, "No Worker Available")
    finally:
        client.close()
