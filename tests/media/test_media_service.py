"""The media service holds the workers across controllers: a pool reaches them over its unix
socket, stops without stopping them, and the next pool takes them over with their live legs (real
workers, a real SIPp caller, the real socket)."""

from __future__ import annotations

import os

import pytest
import pytest_twisted
from twisted.internet import reactor

from callrouter.media import protocol as p
from callrouter.media.link import WorkerLink
from callrouter.media.pool import MediaPool
from callrouter.media.service import MediaService, socket_path
from callrouter.media.settings import MediaSettings
from tests.media.harness import SIPP, Observer, RtpSink, free_udp_port
from tests.media.test_pool_workers import answered_call, until

pytestmark = [pytest.mark.integration,
              pytest.mark.needs(SIPP is None, reason="SIPp (Debian sip-tester) is not installed")]


def _settings() -> MediaSettings:
    return MediaSettings(legs_wanted=2, workers_min=1, spare_calls=1, sip_port_base=free_udp_port(span=4),
                         rtp_port_base=free_udp_port(even=True), rtp_ports_per_worker=100,
                         restart_delay_seconds=0.2, restart_delay_max_seconds=1, stop_timeout_seconds=5)


@pytest_twisted.inlineCallbacks
def test_a_new_pool_takes_over_the_workers_and_their_live_legs(tmp_path):
    """Pool A answers a call through the media service and stops (keep_workers): the worker and the
    call go on. Pool B takes over the same worker process, learns the live leg from its report,
    routes a command to it (the hangup reaches the SIPp caller). The service stops its workers."""
    settings = _settings()
    media = MediaService(settings, socket_path(tmp_path / "var"), reactor)
    media.startService()
    sink, runs = RtpSink(), []
    first = Observer()
    pool_a = MediaPool(settings, first, link=WorkerLink(media.path, reactor), keep_workers=True)
    pool_b = None
    try:
        pool_a.startService()
        statuses = yield pool_a.when_ready()
        pid = statuses[0].pid
        assert pid and media.workers() == [s.name for s in statuses]
        worker, leg, caller = yield answered_call(pool_a, first, settings.sip_port_base, sink, tmp_path)
        runs.append(caller)
        yield pool_a.stopService()
        assert caller.proc.poll() is None and media.workers() and os.kill(pid, 0) is None  # all still there

        second = Observer()
        pool_b = MediaPool(settings, second, link=WorkerLink(media.path, reactor), keep_workers=False)
        pool_b.startService()
        yield pool_b.when_ready()
        _, report = yield until(lambda: second.find(p.LegReport, leg=leg), "the leg report")
        assert (report.outgoing, report.state) == (False, "confirmed")
        assert any(isinstance(e, p.LegsReported) and e.count == 1 for _, e in second.events)
        assert next(s for s in pool_b.status() if s.name == worker).pid == pid   # the same process
        assert pool_b.worker_of(leg) == worker
        pool_b.send(p.Hangup(leg=leg))
        yield until(lambda: second.find(p.LegEnded, leg=leg), "the end of the call")
        yield until(lambda: caller.proc.poll() is not None, "the caller's end")
        assert caller.proc.returncode == 0, caller.errors()
    finally:
        if pool_b is not None:
            yield pool_b.stopService()
        yield media.stopService()
        for run in runs:
            run.kill()
        sink.close()
    assert media.workers() == []
    assert not os.path.exists(media.path)


@pytest_twisted.inlineCallbacks
def test_a_worker_dying_with_no_controller_is_restarted_by_the_service(tmp_path):
    """With no controller connected, the service itself starts a dead worker again, and the next
    pool finds it ready."""
    settings = _settings()
    media = MediaService(settings, socket_path(tmp_path / "var"), reactor)
    media.startService()
    pool = MediaPool(settings, Observer(), link=WorkerLink(media.path, reactor), keep_workers=True)
    try:
        pool.startService()
        statuses = yield pool.when_ready()
        yield pool.stopService()
        old = statuses[0].pid
        os.kill(old, 9)
        yield until(lambda: media._workers.get("w0") and media._workers["w0"].pid != old
                    and media._workers["w0"].ready, "the worker started again", timeout=60)
        pool = MediaPool(settings, Observer(), link=WorkerLink(media.path, reactor), keep_workers=True)
        pool.startService()
        statuses = yield pool.when_ready()
        assert statuses[0].pid == media._workers["w0"].pid != old
        yield pool.stopService()
    finally:
        yield media.stopService()
