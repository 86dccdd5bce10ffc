"""Shared pieces of the web tests: people, fake dialplan source, HTTP client in a thread."""

import datetime as dt
import http.client
import json
from dataclasses import dataclass

from twisted.internet import threads

from callrouter.store.audit import Actor, AuditLog
from callrouter.store.calls import CallRepository
from callrouter.store.users import UserRepository
from callrouter.web.api import Api

PASSWORD = "a long enough password"
ROOT = Actor("root", "cli")
MAX_BODY = 16 * 1024

# username -> (role, external, practices)
PEOPLE = {
    "admin": ("administrator", False, ()),
    "super": ("supervisor", False, ()),
    "sec": ("secretary", False, ("cab-a",)),
    "extsec": ("secretary", True, ("cab-a", "cab-b")),
    "doc": ("practitioner", False, ("cab-b",)),
}


def practice_cards(practice: str) -> dict | None:
    """Cards of two practices, built from the example dialplans as the daemon builds them."""
    from callrouter.events.card import practice_card
    from tests.factories import examples

    sources = {"cab-a": "cabinet-dr-martin", "cab-b": "msp-val-de-moselle"}
    return practice_card(examples()[sources[practice]]) if practice in sources else None


class FakeDialplans:
    """Implements callrouter.ports.DialplanStatusSource."""

    def __init__(self):
        self.statuses = {}

    def dialplan_status(self):
        return dict(self.statuses)


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


class Client:
    def __init__(self, port):
        self.port = port

    def _blocking(self, method, path, body, token, headers):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def call(self, method, path, body=None, token=None, headers=None):
        """A Deferred firing with the Response (the HTTP client runs in a thread)."""
        return threads.deferToThread(self._blocking, method, path, body, token, headers)


@dataclass
class ApiEnv:
    db: object
    api: Api
    client: Client
    tokens: dict
    dialplans: FakeDialplans
    calls: CallRepository
    users: UserRepository
    audit: AuditLog


def now():
    return dt.datetime.now(dt.timezone.utc)
