"""The edge's settings for several nodes, rendered: shared registrations, peer edges, and the
controller's reading of the shared table (time injected). No Kamailio needed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import insert

from callrouter.sip import kamailio
from callrouter.sip.registrations import RegistrationsClient, TableRegistrations, registrations_source
from callrouter.sip.settings import SipSettings, SipSettingsError
from callrouter.store.models import KamailioLocation
from callrouter.store.testing import fresh_database

PG_URL = "postgresql+psycopg://cr:pw@127.0.0.1:5432/test?options=-csearch_path%3Dcr_x"
PEERS = ("127.0.0.12:5060", "[2001:db8::13]:5070")


def render(tmp_path: Path, database_url: str = PG_URL, **changes) -> str:
    sip = SipSettings(listen_address="127.0.0.11", runtime_dir=str(tmp_path / "run"), **changes)
    files = kamailio.layout(tmp_path, sip)
    return kamailio.render(sip, realm="callrouter", database_url=database_url, files=files)


def test_one_node_keeps_registrations_in_memory_and_has_no_peers(tmp_path):
    text = render(tmp_path, "sqlite:////var/lib/callrouter/callrouter.db")
    assert "#!define WITH_SHARED_REGISTRATIONS" not in text and "#!define WITH_PEERS" not in text
    assert "2 sip:" not in kamailio.dispatcher_list(SipSettings())
    assert kamailio.environment(SipSettings(), "sqlite:////x.db") == {}


def test_shared_registrations_render_usrloc_in_the_database(tmp_path):
    text = render(tmp_path, registrations="database", min_expires_s=30)
    assert "#!define WITH_SHARED_REGISTRATIONS" in text
    assert '#!define DB_URL "postgres://cr:pw@127.0.0.1:5432/test"' in text
    assert '#!substdef "!LOCATION_TABLE!cr_x.location!g"' in text
    assert "#!define MIN_EXPIRES 30" in text
    # usrloc names its tables bare: the schema comes through libpq's environment
    assert kamailio.environment(SipSettings(registrations="database"), PG_URL) == {
        "PGOPTIONS": "-c search_path=cr_x"}


def test_shared_registrations_need_postgresql(tmp_path):
    with pytest.raises(kamailio.RenderError, match="needs PostgreSQL"):
        render(tmp_path, "sqlite:////var/lib/callrouter/callrouter.db", registrations="database")


def test_peer_edges_are_a_second_dispatcher_set_and_known_by_their_sockets(tmp_path):
    sip = SipSettings(listen_address="127.0.0.11", peer_edges=PEERS)
    lines = kamailio.dispatcher_list(sip).splitlines()
    assert lines[-2:] == ["2 sip:127.0.0.12:5060 1 0 duid=p0", "2 sip:[2001:db8::13]:5070 1 0 duid=p1"]
    text = render(tmp_path, registrations="database", peer_edges=PEERS)
    assert "#!define WITH_PEERS" in text
    assert ('if ($var(sock) =~ "^[a-z]+:127[.]0[.]0[.]12:[0-9]+$") { $var(peer) = "127.0.0.12:5060"; '
            'return 1; }') in text
    assert 'if ($var(sock) =~ "^[a-z]+:[[]2001:db8::13[]]:[0-9]+$") { $var(peer) = "[2001:db8::13]:5070"' in text


@pytest.mark.parametrize("changes, problem", [
    ({"registrations": "dmq"}, "sip.registrations: one of memory, database"),
    ({"peer_edges": ("127.0.0.12",)}, "sip.peer_edges[0]: expected address:port"),
    ({"peer_edges": ("edge-b:5060",)}, "sip.peer_edges[0]: expected address:port"),
    ({"peer_edges": ("127.0.0.12:0",)}, "sip.peer_edges[0]: expected address:port"),
    ({"peer_edges": ("127.0.0.1:5080",)}, "sip.peer_edges[0]: 127.0.0.1:5080 is on this edge's address"),
    ({"peer_edges": ("127.0.0.12:5060", "127.0.0.12:5062")}, "sip.peer_edges[1]: a second edge on 127.0.0.12"),
    ({"peer_edges": ("127.0.0.12:5060",), "udp_port": 0}, "sip.peer_edges: the edges speak to each other over UDP"),
    ({"min_expires_s": 0}, "sip.min_expires_s: expected a positive integer"),
])
def test_bad_cluster_settings_are_refused_with_their_key(changes, problem):
    with pytest.raises(SipSettingsError) as caught:
        SipSettings(**changes).check()
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_the_controller_reads_who_is_registered_from_the_shared_table(tmp_path):
    now = dt.datetime(2026, 12, 1, 10, 0, 0)
    with fresh_database("sqlite", tmp_path) as db:
        with db.engine.begin() as conn:
            rows = [
                {"ruid": "r1", "username": "alice", "contact": "sip:alice@192.0.2.1:5060",
                 "expires": now + dt.timedelta(seconds=90), "socket": "udp:127.0.0.11:5060",
                 "user_agent": "phone", "received": "sip:198.51.100.7:40000"},
                {"ruid": "r2", "username": "alice", "contact": "sip:alice@192.0.2.2:5060",
                 "expires": now + dt.timedelta(seconds=30), "socket": "tls:127.0.0.12:5061"},
                {"ruid": "r3", "username": "bob", "contact": "sip:bob@192.0.2.3:5060",
                 "expires": now - dt.timedelta(seconds=1), "socket": "udp:127.0.0.12:5060"},
            ]
            for row in rows:
                conn.execute(insert(KamailioLocation).values(**row))
        registered = TableRegistrations(db.engine, local_now=lambda: now).fetch()
        assert set(registered) == {"alice"}  # bob's has expired, though its row is still there
        first, second = registered["alice"]
        assert (first.expires, first.socket, first.received, first.user_agent) == (
            90, "udp:127.0.0.11:5060", "sip:198.51.100.7:40000", "phone")
        assert (second.expires, second.socket, second.user_agent) == (30, "tls:127.0.0.12:5061", None)
        later = TableRegistrations(db.engine, local_now=lambda: now + dt.timedelta(seconds=31))
        assert later.registered_usernames() == frozenset({"alice"})
        assert [c.socket for c in later.fetch()["alice"]] == ["udp:127.0.0.11:5060"]
        with pytest.raises(ValueError, match="needs PostgreSQL"):
            registrations_source(SipSettings(registrations="database"), db.engine)
        assert isinstance(registrations_source(SipSettings(), db.engine), RegistrationsClient)


def test_a_node_with_shared_registrations_reads_them_from_postgresql(tmp_path):
    with fresh_database("postgresql", tmp_path) as db:
        source = registrations_source(SipSettings(registrations="database"), db.engine)
        assert isinstance(source, TableRegistrations) and source.fetch() == {}
