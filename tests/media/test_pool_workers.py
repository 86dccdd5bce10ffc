"""The pool with real worker processes and real SIPp callers, on the Twisted reactor."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path
from typing import Callable

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from callrouter.media import protocol as p
from callrouter.media.pool import WORKER_LOST, MediaPool
from callrouter.media.settings import MediaSettings
from tests.media.harness import SIPP, Observer, RtpSink, Sipp, free_udp_port

pytestmark = [pytest.mark.integration,
              pytest.mark.needs(SIPP is None, reason="SIPp (Debian sip-tester) is not installed")]

CALLER = "+33612345678"
LEGS_WANTED = 5  # more than one worker's cap (4 with the PyPI wheel)


@defer.inlineCallbacks
def until(predicate: Callable[[], object], what: str, timeout: float = 30.0):
    """Wait (without blocking the reactor) until predicate() is truthy; return its value."""
    deadline = reactor.seconds() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        yield task.deferLater(reactor, 0.05, lambda: None)


@defer.inlineCallbacks
def answered_call(pool: MediaPool, observer: Observer, port: int, sink: RtpSink, workdir: Path):
    """A SIPp caller (waiting for our BYE) on one worker port, answered through the pool."""
    known = {e.leg for _, e in observer.events if isinstance(e, p.IncomingCall)}
    sipp = Sipp("caller_wait_bye.xml", remote_port=port, variables={"rtp_port": str(sink.port), "caller": CALLER},
                workdir=workdir)
    found = yield until(lambda: next((we for we in observer.events if isinstance(we[1], p.IncomingCall)
                                      and we[1].leg not in known), None), "an incoming call")
    worker, call = found
    pool.send(p.Answer(leg=call.leg))
    yield until(lambda: observer.find(p.LegState, leg=call.leg, state="confirmed"), "the answer")
    return worker, call.leg, sipp


@pytest_twisted.inlineCallbacks
def test_killed_worker_is_restarted_its_legs_lost_others_untouched(tmp_path):
    """Two workers hold a call each; SIGKILL on the first: its leg is reported worker_lost, the
    second worker's call goes on and ends normally, and the restarted first worker takes calls."""
    base = free_udp_port(span=LEGS_WANTED)
    settings = MediaSettings(legs_wanted=LEGS_WANTED, workers_min=1, spare_calls=1, sip_port_base=base,
                             rtp_port_base=free_udp_port(even=True), rtp_ports_per_worker=100,
                             restart_delay_seconds=0.2, stop_timeout_seconds=5)
    observer = Observer()
    pool = MediaPool(settings, observer)
    pool.startService()
    sinks = [RtpSink() for _ in range(3)]
    callers: list[Sipp] = []
    try:
        statuses = yield pool.when_ready()
        cap = pool.cap
        assert len(statuses) == max(1, math.ceil(LEGS_WANTED / cap)) >= 2
        assert pool.sip_ports() == [base + i for i in range(len(statuses))]

        w0, leg_a, caller_a = yield answered_call(pool, observer, base, sinks[0], tmp_path)
        w1, leg_b, caller_b = yield answered_call(pool, observer, base + 1, sinks[1], tmp_path)
        callers += [caller_a, caller_b]
        assert (w0, w1) == ("w0", "w1") and pool.worker_of(leg_a) == "w0"
        old_pid = statuses[0].pid

        os.kill(old_pid, signal.SIGKILL)
        yield until(lambda: observer.lost, "the lost leg")
        assert observer.lost == [("w0", leg_a, WORKER_LOST)]
        assert pool.worker_of(leg_a) is None and pool.worker_of(leg_b) == "w1"
        yield until(lambda: any(s.name == "w0" and s.state == "ready" and s.pid != old_pid
                                for s in pool.status()), "the restarted worker")

        pool.send(p.Hangup(leg=leg_b))                     # the other worker's call is intact
        yield until(lambda: observer.find(p.LegEnded, leg=leg_b), "the end of the second call")
        yield until(lambda: caller_b.proc.poll() is not None, "the second caller's end")
        assert caller_b.proc.returncode == 0, caller_b.errors()

        w0_again, leg_c, caller_c = yield answered_call(pool, observer, base, sinks[2], tmp_path)
        callers.append(caller_c)
        assert w0_again == "w0"
        pool.send(p.Hangup(leg=leg_c))
        yield until(lambda: caller_c.proc.poll() is not None, "the third caller's end")
        assert caller_c.proc.returncode == 0, caller_c.errors()
    finally:
        yield pool.stopService()
        for caller in callers:
            caller.kill()
        for sink in sinks:
            sink.close()
    assert all(s.state == "down" and s.pid is None for s in pool.status())


@pytest_twisted.inlineCallbacks
def test_controller_dials_a_secretary_on_the_callers_worker_and_bridges(tmp_path):
    """Through the pool: pick a worker with room for two legs, dial the secretary on the worker
    holding the caller, bridge, and the pool forgets both legs once they end."""
    base = free_udp_port(span=LEGS_WANTED)
    settings = MediaSettings(legs_wanted=LEGS_WANTED, workers_min=1, spare_calls=1, sip_port_base=base,
                             rtp_port_base=free_udp_port(even=True), rtp_ports_per_worker=100)
    observer = Observer()
    pool = MediaPool(settings, observer)
    pool.startService()
    caller_rtp, secretary_rtp = RtpSink(), RtpSink()
    runs: list[Sipp] = []
    try:
        yield pool.when_ready()
        secretary = Sipp("uas_secretary.xml", variables={"rtp_port": str(secretary_rtp.port)}, workdir=tmp_path)
        runs.append(secretary)
        worker, leg, caller = yield answered_call(pool, observer, base + 1, caller_rtp, tmp_path)
        runs.append(caller)
        assert worker == "w1" and pool.pick(legs=2) == "w0"   # least loaded first
        pool.dial(worker, p.Dial(leg="sec-1", uri=f"sip:secretary@127.0.0.1:{secretary.port}",
                                 display_name="Cabinet Exemple", headers={"X-Callrouter-Call": "call-42"}))
        yield until(lambda: observer.find(p.LegState, leg="sec-1", state="confirmed"), "the secretary")
        pool.send(p.Bridge(leg=leg, other="sec-1"))
        yield until(lambda: caller_rtp.sources and secretary_rtp.sources, "RTP on both legs")
        yield defer_to_thread_send(caller_rtp)
        yield until(lambda: secretary_rtp.audible() >= 20, "the caller's voice at the secretary")
        pool.send(p.Hangup(leg="sec-1"))
        pool.send(p.Hangup(leg=leg))
        yield until(lambda: pool.worker_of(leg) is None and pool.worker_of("sec-1") is None, "both legs ended")
        yield until(lambda: secretary.proc.poll() is not None and caller.proc.poll() is not None, "SIPp ends")
        assert secretary.proc.returncode == 0, secretary.errors()
        assert caller.proc.returncode == 0, caller.errors()
    finally:
        yield pool.stopService()
        for run in runs:
            run.kill()
        caller_rtp.close()
        secretary_rtp.close()


def defer_to_thread_send(sink: RtpSink):
    """Send the caller's voice from a thread: RtpSink.send_rtp paces itself with sleep."""
    from twisted.internet import threads

    return threads.deferToThread(sink.send_rtp, next(iter(sink.sources)), bytes((0x20 + (i * 7) % 64) ^ 0x55
                                                                             for i in range(160)), 8, 50)


@pytest_twisted.inlineCallbacks
def test_a_full_workers_caller_gets_her_secretary_on_another_worker_both_ways(tmp_path):
    """Through the pool with real workers: the caller's worker holds four callers, so the
    secretary's leg dialled "on the caller's worker" goes to the other one; the bridge becomes a
    relay and the audio goes both ways; the relay goes with the secretary's hang-up."""
    base = free_udp_port(span=2)
    settings = MediaSettings(legs_wanted=8, workers_min=2, workers_max=2, spare_calls=1, sip_port_base=base,
                             rtp_port_base=free_udp_port(even=True), rtp_ports_per_worker=100)
    observer = Observer()
    pool = MediaPool(settings, observer)
    pool.startService()
    sinks = [RtpSink() for _ in range(5)]
    runs: list[Sipp] = []
    try:
        yield pool.when_ready()
        legs = []
        for sink in sinks[:4]:
            worker, leg, caller = yield answered_call(pool, observer, base, sink, tmp_path)
            assert worker == "w0"
            legs.append(leg)
            runs.append(caller)
        secretary_rtp = sinks[4]
        secretary = Sipp("uas_secretary.xml", variables={"rtp_port": str(secretary_rtp.port)}, workdir=tmp_path)
        runs.append(secretary)
        pool.dial("w0", p.Dial(leg="sec-1", uri=f"sip:secretary@127.0.0.1:{secretary.port}",
                               display_name="Cabinet Exemple", headers={"X-Callrouter-Call": "call-42"}))
        assert pool.worker_of("sec-1") == "w1"
        yield until(lambda: observer.find(p.LegState, leg="sec-1", state="confirmed"), "the secretary")
        pool.send(p.Bridge(leg=legs[0], other="sec-1"))
        caller_rtp = sinks[0]
        yield until(lambda: caller_rtp.sources and secretary_rtp.sources, "RTP on both legs")
        yield defer_to_thread_send(caller_rtp)
        yield until(lambda: secretary_rtp.audible() >= 20, "the caller's voice at the secretary, through the relay")
        yield defer_to_thread_send(secretary_rtp)
        yield until(lambda: caller_rtp.audible() >= 20, "the secretary's voice back to the caller")
        assert len(pool.relays) == 1
        assert not [e for _, e in observer.events if isinstance(e, p.Error)]
        pool.send(p.Hangup(leg="sec-1"))
        yield until(lambda: len(pool.relays) == 0, "the relay closed with the secretary's leg")
        for leg in legs:
            pool.send(p.Hangup(leg=leg))
        yield until(lambda: all(r.proc.poll() is not None for r in runs), "SIPp ends")
        assert all(r.proc.returncode == 0 for r in runs), [r.errors() for r in runs]
    finally:
        yield pool.stopService()
        for run in runs:
            run.kill()
        for sink in sinks:
            sink.close()
