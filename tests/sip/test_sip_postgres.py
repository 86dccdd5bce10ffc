"""The edge on PostgreSQL: Kamailio authenticates against the users table in callrouter's schema."""

from __future__ import annotations

import datetime as dt

import pytest

from callrouter.store.testing import fresh_database
from callrouter.store.users import UserRepository
from tests.sip.conftest import ADMIN, REALM, SIP_PASSWORD, edge_settings
from tests.sip.harness import KamailioProc
from tests.sip.sipclient import SipClient

pytestmark = pytest.mark.integration


def test_registration_and_disabling_work_on_postgresql(tmp_path, fast_hashing):
    with fresh_database("postgresql", tmp_path) as db:
        users = UserRepository(db, sip_realm=REALM)
        now = dt.datetime.now(dt.timezone.utc)
        users.add(ADMIN, "alice", "Alice", "secretary", "Console-Passw0rd-long!", now,
                  sip_password=SIP_PASSWORD)
        proc = KamailioProc(tmp_path, edge_settings(), REALM, db.url)
        client = SipClient(("127.0.0.1", proc.sip.udp_port), bind_ip="127.0.0.71")
        try:
            assert client.register("alice", SIP_PASSWORD).status == 200
            assert client.register("alice", "wrong").status == 401
            users.disable(ADMIN, "alice", now)
            assert client.register("alice", SIP_PASSWORD).status == 401
            assert proc.alive()
        finally:
            client.close()
            proc.stop()
