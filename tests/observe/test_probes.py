"""The probes: the real databases answer (or not), a probe that hangs is down once stale, and the
edge's TLS certificate's notAfter read from a real certificate made by openssl."""

from __future__ import annotations

import datetime as dt
import math
import shutil

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock

from callrouter.devtools.serve import free_tcp_port
from callrouter.metrics import Metrics
from callrouter.observe.probes import Probe, Probes, database_check, edge_check, not_after
from callrouter.sip.tls import ensure_certificate
from callrouter.store.db import Database
from callrouter.store.testing import KINDS, fresh_database


def synchronously(f):
    return defer.maybeDeferred(f)


def sample(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name)


@pytest.mark.parametrize("kind", KINDS)
def test_the_database_probe_says_up_when_the_real_database_answers(kind, tmp_path):
    with fresh_database(kind, tmp_path) as db:
        metrics = Metrics()
        assert math.isnan(sample(metrics, "callrouter_database_up"))  # unknown until probed
        probes = Probes([Probe("database", database_check(db.engine), metrics.database_up)], Clock(), synchronously)
        probes.sample()
        assert sample(metrics, "callrouter_database_up") == 1


@pytest.mark.parametrize("kind", KINDS)
def test_the_database_probe_says_down_when_it_cannot_read(kind):
    # The port is picked when the test runs (in the parameter's id it would differ from one test
    # process to the next).
    url = {"postgresql": f"postgresql+psycopg://postgres@127.0.0.1:{free_tcp_port()}/test",
           "sqlite": "sqlite:////nonexistent-directory/callrouter.db"}[kind]
    metrics, db = Metrics(), Database.from_url(url)
    try:
        Probes([Probe("database", database_check(db.engine), metrics.database_up)], Clock(), synchronously).sample()
    finally:
        db.dispose()
    assert sample(metrics, "callrouter_database_up") == 0


def test_a_probe_still_running_is_not_doubled_and_is_down_once_stale():
    clock, metrics = Clock(), Metrics()
    pending: list[defer.Deferred] = []
    started = []

    def run_blocking(f):
        started.append(f)
        pending.append(defer.Deferred())
        return pending[-1]

    probes = Probes([Probe("edge", lambda: None, metrics.edge_up)], clock, run_blocking, interval=5, stale_after=10)
    probes.startService()
    clock.advance(5)
    assert len(started) == 1 and math.isnan(sample(metrics, "callrouter_edge_up"))
    clock.advance(5)
    assert len(started) == 1 and sample(metrics, "callrouter_edge_up") == 0  # 10 s without an answer
    pending[0].callback(None)
    assert sample(metrics, "callrouter_edge_up") == 1
    clock.advance(5)
    assert len(started) == 2
    pending[1].errback(ConnectionRefusedError("refused"))
    assert sample(metrics, "callrouter_edge_up") == 0
    probes.stopService()


def test_the_edge_probe_asks_for_the_uptime():
    asked = []
    edge_check(lambda method: asked.append(method))()
    assert asked == ["core.uptime"]


@pytest.mark.needs(shutil.which("openssl") is None, reason="openssl (Debian package openssl) is needed")
def test_the_certificate_expiry_is_its_not_after_and_is_read_again_when_the_file_changes(tmp_path):
    metrics = Metrics()
    cert, _ = ensure_certificate(tmp_path / "a", days=10)
    probes = Probes([], Clock(), synchronously, certificate=cert, tls_expiry=metrics.tls_expiry)
    probes.sample()
    expiry = sample(metrics, "callrouter_tls_certificate_expiry_timestamp_seconds")
    assert expiry == not_after(cert).timestamp()
    in_ten_days = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=10)).timestamp()
    assert abs(expiry - in_ten_days) < 120
    renewed, _ = ensure_certificate(tmp_path / "b", days=400)
    cert.write_bytes(renewed.read_bytes())
    probes.sample()
    assert sample(metrics, "callrouter_tls_certificate_expiry_timestamp_seconds") > in_ten_days + 300 * 86400
    cert.unlink()
    probes.sample()
    assert math.isnan(sample(metrics, "callrouter_tls_certificate_expiry_timestamp_seconds"))
