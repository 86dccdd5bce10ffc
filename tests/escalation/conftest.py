"""Fixtures of the escalation tests: cheap password hashing for the tests that log users in (they
check behaviour, not the hash's cost), and an SMS gateway over real HTTP on loopback."""

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.web import server

from tests.escalation.support import Gateway


@pytest.fixture
def gateway():
    site = Gateway()
    port = reactor.listenTCP(0, server.Site(site), interface="127.0.0.1")
    site.url = f"http://127.0.0.1:{port.getHost().port}/sms/send"
    yield site
    pytest_twisted.blockon(port.stopListening())
