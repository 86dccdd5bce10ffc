"""Probes of what the controller depends on, every `interval` seconds: the database answers a read,
the SIP edge answers the controller's JSON-RPC, and the edge's TLS certificate's notAfter.

A blocking probe runs on the reactor's thread pool; one still running when the next is due is not
doubled, and once it has run longer than `stale_after` its gauge says down (a database whose TCP
connect hangs is as unreachable as one that refuses). The certificate is read again only when its
file changes; a missing or unreadable certificate sets it to NaN ("unknown": no rule compares
true), as it is when the edge runs without TLS.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from prometheus_client import Gauge
from twisted.application.internet import TimerService

from callrouter.ports import RunBlocking

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Probe:
    """One dependency: `check()` blocks and raises when it is down; `gauge` gets 1 or 0."""

    name: str
    check: Callable[[], Any]
    gauge: Gauge
    started: float | None = None  # reactor seconds the probe in flight started at
    up: bool | None = field(default=None)


class Probes(TimerService):
    def __init__(self, probes: list[Probe], reactor: Any, run_blocking: RunBlocking, certificate: Path | None = None,
                 tls_expiry: Gauge | None = None, interval: float = 5.0, stale_after: float = 10.0) -> None:
        """`run_blocking(f)`: f on the reactor's thread pool, a Deferred of its result."""
        super().__init__(interval, self.sample)
        self.clock = reactor
        self.setName("probes")
        self._probes, self._reactor, self._stale_after = probes, reactor, stale_after
        self._run_blocking = run_blocking
        self._certificate, self._tls_expiry = certificate, tls_expiry
        self._cert_stat: tuple[int, int] | None = None

    def sample(self) -> None:
        for probe in self._probes:
            self._run(probe)
        if self._certificate is not None and self._tls_expiry is not None:
            self._read_certificate()

    def _run(self, probe: Probe) -> None:
        now = self._reactor.seconds()
        if probe.started is not None:  # still running: down once it has hung too long
            if now - probe.started >= self._stale_after:
                self._report(probe, False, "no answer after %.0f s" % (now - probe.started))
            return
        probe.started = now
        d = self._run_blocking(probe.check)
        d.addCallbacks(lambda _: self._report(probe, True), lambda f: self._report(probe, False, f.getErrorMessage()))
        d.addBoth(lambda _: setattr(probe, "started", None))

    def _report(self, probe: Probe, up: bool, why: str = "") -> None:
        if probe.up is not up:  # say it once per change
            if up:
                logger.info("%s reachable%s", probe.name, " again" if probe.up is False else "")
            else:
                logger.error("%s unreachable: %s", probe.name, why)
        probe.up = up
        probe.gauge.set(int(up))

    def _read_certificate(self) -> None:
        assert self._certificate is not None and self._tls_expiry is not None
        try:
            st = self._certificate.stat()
        except OSError:
            if self._cert_stat is not None:
                logger.warning("TLS certificate %s is gone", self._certificate)
            self._cert_stat = None
            _unknown(self._tls_expiry)
            return
        stat = (st.st_mtime_ns, st.st_size)
        if stat == self._cert_stat:
            return
        self._cert_stat = stat
        try:
            self._tls_expiry.set(not_after(self._certificate).timestamp())
        except (OSError, ValueError) as exc:
            logger.error("TLS certificate %s unreadable: %s", self._certificate, exc)
            _unknown(self._tls_expiry)


def not_after(path: Path) -> dt.datetime:
    """The notAfter of the first PEM certificate in `path` (aware, UTC)."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    return cert.not_valid_after_utc


def _unknown(gauge: Gauge) -> None:
    gauge.set(float("nan"))


def database_check(engine: Any) -> Callable[[], None]:
    """A read of the schema's version table through `engine` (SQLAlchemy): the file or server answers."""
    from sqlalchemy import text

    def check() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM alembic_version")).scalar()

    return check


def edge_check(call: Callable[..., Any]) -> Callable[[], None]:
    """`call(method)`: one JSON-RPC call to the edge (callrouter.sip.registrations.RegistrationsClient)."""
    return lambda: call("core.uptime")


def under(directory: str | os.PathLike, name: str) -> Path:
    """`name` in `directory`, the directory taken from the working directory when relative (as the
    edge resolves its tls_dir)."""
    path = Path(directory)
    return (path if path.is_absolute() else Path.cwd() / path) / name
