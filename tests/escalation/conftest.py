"""Fixtures of the escalation tests: cheap password hashing for the tests that log users in (they
check behaviour, not the hash's cost), and an SMS gateway over real HTTP on loopback."""

import pytest
import pytest_twisted
from argon2 import PasswordHasher
from twisted.internet import reactor
from twisted.web import server

from callrouter.auth import passwords
from tests.escalation.support import Gateway


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def gateway():
    site = Gateway()
    port = reactor.listenTCP(0, server.Site(site), interface="127.0.0.1")
    site.url = f"http://127.0.0.1:{port.getHost().port}/sms/send"
    yield site
    pytest_twisted.blockon(port.stopListening())
