"""One real Kamailio per test module, configured by callrouter from a fresh migrated database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from callrouter.auth import passwords
from callrouter.sip.settings import SipSettings
from callrouter.store.audit import Actor
from callrouter.store.testing import fresh_database
from callrouter.store.users import UserRepository
from tests.sip.harness import KAMAILIO, SIPP, KamailioProc, Reaper, free_port

REALM = "callrouter"
SIP_PASSWORD = "Sip-secret-Passw0rd!"
TRUNK_IP = "127.0.0.5"
ADMIN = Actor("test", "127.0.0.1")

pytestmark = pytest.mark.integration


@dataclass
class Edge:
    kamailio: KamailioProc
    sip: SipSettings
    users: UserRepository
    workdir: Path
    trunk_port: int

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.sip.udp_port)


def edge_settings(**changes) -> SipSettings:
    sip_port = free_port()
    return SipSettings(**{
        "udp_port": sip_port, "tcp_port": sip_port, "tls_port": free_port(),
        "rpc_port": free_port(), "trusted_trunks": (TRUNK_IP,),
        "worker_base_port": free_port(span=2), "worker_count": 2,
        "worker_answer_timeout_ms": 1500, "worker_probe_interval_s": 1,
        "outbound_trunk": f"127.0.0.1:{free_port()}", "children": 2, "shm_mb": 32, "pkg_mb": 4,
        "flood_window_s": 2, "flood_max_requests": 40, "ban_seconds": 60,
        "auth_failures_max": 4, "runtime_dir": "run", "tls_dir": "tls", **changes})


def add_edge_users(db, accounts, disabled=("bob",)) -> UserRepository:
    """Secretaries (name, SIP password or None) in `db`, cheaply hashed (a module fixture cannot
    use the autouse hashing fixture), `disabled` ones disabled; the users' repository."""
    hasher = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        users = UserRepository(db, sip_realm=REALM)
        now = dt.datetime.now(dt.timezone.utc)
        for name, sip_password in accounts:
            users.add(ADMIN, name, name.title(), "secretary", "Console-Passw0rd-long!", now,
                      sip_password=sip_password)
        for name in disabled:
            users.disable(ADMIN, name, now)
    finally:
        passwords._hasher = hasher
    return users


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    """Kamailio with users alice (SIP password), bob (disabled), carol (no SIP password)."""
    if KAMAILIO is None or SIPP is None:
        pytest.fail("kamailio and sipp are needed (scripts/ensure-system-deps)")
    workdir = tmp_path_factory.mktemp("edge")
    with fresh_database("sqlite", workdir) as db:
        users = add_edge_users(db, (("alice", SIP_PASSWORD), ("bob", SIP_PASSWORD),
                                    ("carol", None), ("dave", SIP_PASSWORD)))
        sip = edge_settings()
        proc = KamailioProc(workdir, sip, REALM, db.url)
        try:
            yield Edge(proc, sip, users, workdir, int(sip.outbound_trunk.rsplit(":", 1)[1]))
        finally:
            proc.stop()


@pytest.fixture
def fast_hashing(monkeypatch):
    """Cheap argon2 parameters for the console passwords the users are created with."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                             parallelism=1))


@pytest.fixture
def reaper():
    r = Reaper()
    yield r
    r.close()
