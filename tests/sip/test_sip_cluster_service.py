"""The edge service with shared registrations: Kamailio started by callrouter's own service on a
private PostgreSQL schema finds its tables there, and what it logs of other edges' contacts is
not an error."""

from __future__ import annotations

import logging

import pytest
import pytest_twisted
from twisted.internet import reactor, threads

from callrouter.sip import service
from callrouter.sip.registrations import RegistrationsClient, TableRegistrations
from callrouter.sip.service import KamailioService
from callrouter.store.testing import fresh_database
from tests.sip.conftest import REALM, SIP_PASSWORD, add_edge_users, edge_settings
from tests.sip.sipclient import SipClient
from tests.sip.test_sip_service import answers, eventually

pytestmark = pytest.mark.integration


@pytest_twisted.ensureDeferred
async def test_the_service_runs_kamailio_with_registrations_in_its_schema(tmp_path):
    """usrloc checks its table's version in the bare `version` table: without the URL's search
    path given to Kamailio (PGOPTIONS) it would not find ours, and would not start."""
    with fresh_database("postgresql", tmp_path) as db:
        add_edge_users(db, (("alice", SIP_PASSWORD),), disabled=())
        sip = edge_settings(tls_port=0, registrations="database")
        svc = KamailioService(sip, realm=REALM, database_url=db.url, config_dir=tmp_path / "k",
                              reactor=reactor, base=tmp_path, stop_grace=5)
        client = SipClient(("127.0.0.1", sip.udp_port), bind_ip="127.0.0.32")
        svc.startService()
        try:
            assert await eventually(lambda: answers(RegistrationsClient(sip.rpc_port, timeout=1.0)))
            response = await threads.deferToThread(client.register, "alice", SIP_PASSWORD, 600)
            assert response is not None and response.status == 200
            registered = TableRegistrations(db.engine).fetch()
            assert [c.socket for c in registered["alice"]] == [f"udp:127.0.0.1:{sip.udp_port}"]
            assert svc.starts == 1
        finally:
            client.close()
            await svc.stopService()


def test_another_edges_contact_skipped_by_usrloc_is_logged_as_routine(caplog):
    caplog.set_level(logging.DEBUG, logger="callrouter.sip.service")
    service._relay(b" 1(42) ERROR: usrloc [udomain.c:707]: db_load_urecord(): skipping record for "
                   b"alice in table location\n")
    service._relay(b" 1(42) ERROR: usrloc [udomain.c:9]: db_load_urecord(): failed to query\n")
    assert [r.levelno for r in caplog.records] == [logging.DEBUG, logging.ERROR]
