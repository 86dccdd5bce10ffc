"""GET /api/phone: the signed-in secretary's own registration for the console's phone, on the real
store; and the console page's policy letting it reach the edge's WebSocket port only."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from callrouter.store.audit import Actor
from callrouter.store.users import UserRepository
from callrouter.web.http import HttpRequest
from callrouter.web.pages import CSP, csp_connecting_to
from callrouter.web.phone import PhoneApi
from callrouter.web.router import Context

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
ROOT = Actor("root", "cli")
PASSWORD = "Console-Passw0rd-long!"


@pytest.fixture
def users(sqlite_db):
    repo = UserRepository(sqlite_db, sip_realm="callrouter")
    repo.add(ROOT, "lea", "Léa", "secretary", PASSWORD, T0, sip_password="Sip-secret-1")
    repo.add(ROOT, "maud", "Maud", "secretary", PASSWORD, T0, sip_password="Sip-secret-2")
    repo.add(ROOT, "anne", "Anne", "secretary", PASSWORD, T0, sip_password="Sip-secret-3")
    repo.add(ROOT, "nina", "Nina", "secretary", PASSWORD, T0)  # no SIP password
    repo.disable(ROOT, "anne", T0)
    return repo


def ask(api: PhoneApi, users: UserRepository, username: str) -> dict:
    request = HttpRequest("GET", "/api/phone", {}, {}, b"", "127.0.0.1", T0)
    return api.describe(Context(request, {}, users.get(username), "token"))


def test_she_gets_her_own_ha1_and_her_colleagues_who_can_take_a_transfer(users):
    answer = ask(PhoneApi(users, "callrouter", 8443), users, "lea")
    assert answer["enabled"] is True
    assert answer["ha1"] == hashlib.md5(b"lea:callrouter:Sip-secret-1").hexdigest()
    assert (answer["username"], answer["realm"], answer["wss_port"]) == ("lea", "callrouter", 8443)
    assert answer["colleagues"] == [{"username": "maud", "display_name": "Maud"}]  # not anne, nina, herself


def test_no_phone_without_a_wss_port_or_without_her_sip_password(users):
    no_wss = ask(PhoneApi(users, "callrouter", 0), users, "lea")
    no_sip = ask(PhoneApi(users, "callrouter", 8443), users, "nina")
    assert no_wss["enabled"] is no_sip["enabled"] is False
    assert "wss_port" in no_wss["message"] and "mot de passe SIP" in no_sip["message"]
    assert "ha1" not in no_wss and "ha1" not in no_sip


def test_the_console_page_may_connect_to_the_edge_websocket_port_and_nowhere_else():
    policy = csp_connecting_to(("wss://*:8443",))
    assert "connect-src 'self' wss://*:8443;" in policy
    assert policy.replace(" wss://*:8443", "") == CSP
    with pytest.raises(ValueError):
        csp_connecting_to(("https://evil.example",))
