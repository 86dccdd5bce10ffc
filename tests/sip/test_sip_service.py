"""The Twisted service running the real Kamailio: config written, restarted after a crash, stopped
with no process left behind."""

from __future__ import annotations

import logging
import os
import signal
import socket

import pytest
import pytest_twisted
from twisted.internet import reactor, task, threads

from callrouter.sip.registrations import RegistrationsClient, RegistrationsUnavailable
from callrouter.sip.service import KamailioService, restart_delay
from callrouter.store.testing import fresh_database
from tests.sip.conftest import REALM, edge_settings

pytestmark = pytest.mark.integration


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def eventually(predicate, timeout: float = 20.0, interval: float = 0.2):
    for _ in range(int(timeout / interval)):
        value = await threads.deferToThread(predicate)
        if value:
            return value
        await task.deferLater(reactor, interval, lambda: None)
    return await threads.deferToThread(predicate)


def answers(rpc: RegistrationsClient) -> bool:
    try:
        rpc.call("core.version")
    except RegistrationsUnavailable:
        return False
    return True


@pytest_twisted.ensureDeferred
async def test_the_service_runs_restarts_and_stops_kamailio_leaving_nothing(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="callrouter.sip.service")
    with fresh_database("sqlite", tmp_path) as db:
        sip = edge_settings()
        svc = KamailioService(sip, realm=REALM, database_url=db.url, config_dir=tmp_path / "k",
                              reactor=reactor, base=tmp_path, stop_grace=5)
        rpc = RegistrationsClient(sip.rpc_port, timeout=1.0)
        svc.startService()
        try:
            assert await eventually(lambda: answers(rpc))
            first = svc.pid
            assert (tmp_path / "k" / "kamailio.cfg").stat().st_mode & 0o077 == 0
            os.killpg(first, signal.SIGKILL)  # a crash of the whole group
            assert await eventually(lambda: svc.starts == 2 and svc.pid not in (None, first))
            assert await eventually(lambda: answers(rpc))
            second = svc.pid
        finally:
            await svc.stopService()
        assert svc.pid is None
        # the killed group's orphans are reaped by init, not by us: wait for that
        assert await eventually(lambda: not group_alive(first) and not group_alive(second))
        assert not answers(rpc)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("kamailio: ") for m in messages)
    assert any("restarting in" in m for m in messages)


def test_restart_delay_backs_off_and_is_capped():
    assert [restart_delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert restart_delay(50) == 60.0


def test_restart_delay_stays_capped_after_any_number_of_deaths():
    """Twisted's backoff policy: no float overflow after a thousand quick deaths in a row."""
    assert restart_delay(5000) == 60.0


MALFORMED = (
    b"INVITE sip:0033612345678@127.0.0.1 SIP/2.0\r\nVia: nonsense +33612345678\r\n\r\n",
    b"INVITE sip:+33612345678@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKy\r\n"
    b"From: <sip:0891234567@127.0.0.1>;tag=1\r\nTo: <sip:06 12 34 56 78@x>\r\nCall-ID: 2\r\n"
    b"CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
)


@pytest_twisted.ensureDeferred
async def test_kamailio_dumping_malformed_messages_reaches_our_log_with_their_numbers_masked(tmp_path, caplog):
    """Kamailio logs the messages it cannot parse, whole; what we relay carries each number masked
    as our own lines do (prefix and last two digits), spaced or not."""
    caplog.set_level(logging.DEBUG, logger="callrouter.sip.service")
    with fresh_database("sqlite", tmp_path) as db:
        sip = edge_settings()
        svc = KamailioService(sip, realm=REALM, database_url=db.url, config_dir=tmp_path / "k",
                              reactor=reactor, base=tmp_path, stop_grace=5)
        svc.startService()
        try:
            assert await eventually(lambda: answers(RegistrationsClient(sip.rpc_port, timeout=1.0)))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for message in MALFORMED:
                    s.sendto(message, ("127.0.0.1", sip.udp_port))
            relayed = lambda: [r.getMessage() for r in caplog.records if r.getMessage().startswith("kamailio: ")]  # noqa: E731
            assert await eventually(lambda: sum("bad header field" in m for m in relayed()) >= 2)
        finally:
            await svc.stopService()
    lines = relayed()
    text = "\n".join(lines)
    for clear in ("+33612345678", "0033612345678", "0891234567", "06 12 34 56 78", "3361234", "612345678"):
        assert clear not in text, (clear, text)
    for masked in ("sip:00*********78@", "nonsense +33*******78", "sip:06**********78@"):
        assert masked in text, (masked, text)


@pytest_twisted.ensureDeferred
async def test_a_kamailio_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path):
    """A stand-in binary that traps SIGTERM: the service escalates to SIGKILL of the group."""
    stubborn = tmp_path / "stubborn-kamailio"
    stubborn.write_text("#!/bin/sh\ntrap '' TERM\nsleep 300 &\nwait\n")
    stubborn.chmod(0o755)
    with fresh_database("sqlite", tmp_path) as db:
        sip = edge_settings(binary=str(stubborn))
        svc = KamailioService(sip, realm=REALM, database_url=db.url, config_dir=tmp_path / "k",
                              reactor=reactor, base=tmp_path, stop_grace=1)
        svc.startService()
        await task.deferLater(reactor, 0.5, lambda: None)
        pgid = svc.pid
        assert group_alive(pgid)
        await svc.stopService()
        assert await eventually(lambda: not group_alive(pgid))
        assert svc.starts == 1


@pytest_twisted.ensureDeferred
async def test_a_kamailio_left_by_a_killed_run_is_stopped_before_ours_starts(tmp_path):
    """callrouter SIGKILLed: its Kamailio (own process group) lives on with the SIP ports; the next
    start stops it first instead of failing to bind."""
    import subprocess

    from callrouter.sip import kamailio
    from callrouter.sip.service import reap_stale

    with fresh_database("sqlite", tmp_path) as db:
        sip = edge_settings()
        files = kamailio.write_config(tmp_path / "k", sip, realm=REALM, database_url=db.url, base=tmp_path)
        stale = subprocess.Popen(["setsid", *kamailio.command(sip, files)], cwd=tmp_path,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rpc = RegistrationsClient(sip.rpc_port, timeout=1.0)
        try:
            assert await eventually(lambda: answers(rpc) and files.pid_file.exists())
            other = tmp_path / "other.cfg"
            assert reap_stale(files.pid_file, other) is None and answers(rpc)  # not ours: untouched
            svc = KamailioService(sip, realm=REALM, database_url=db.url, config_dir=tmp_path / "k",
                                  reactor=reactor, base=tmp_path, stop_grace=5)
            svc.startService()
            try:
                assert await eventually(lambda: stale.poll() is not None)
                assert await eventually(lambda: svc.pid is not None and answers(rpc))
                assert svc.starts == 1
            finally:
                await svc.stopService()
        finally:
            if stale.poll() is None:
                os.killpg(stale.pid, signal.SIGKILL)
            stale.wait(timeout=10)
