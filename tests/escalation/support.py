"""Shared pieces of the escalation tests: a dialplan, a fake channel, an engine on a real database."""

import dataclasses
import datetime as dt
import inspect
import json

from prometheus_client import CollectorRegistry
from twisted.internet import defer, task
from twisted.web import resource

from callrouter.domain.model import EscalationStep, EscalationTier
from callrouter.escalation.engine import EscalationEngine
from callrouter.escalation.metrics import EscalationMetrics
from callrouter.escalation.ports import ChannelError
from callrouter.escalation.settings import EscalationSettings
from callrouter.store.escalations import EscalationRepository
from tests.domain.test_escalation import T0, dialplan as base_dialplan

SECRET = "test-secret"
URGENT = EscalationTier("urgent", (
    EscalationStep("sms", "on_call", wait_s=0),
    EscalationStep("email", "on_call", wait_s=180),
    EscalationStep("sms", "backup", wait_s=180),
), repeat=1)
SETTINGS = EscalationSettings(enabled=True, ack_secret=SECRET, public_url="https://cr.example.org")


def dialplan(**overrides):
    return base_dialplan(**{"escalation": {"urgent": URGENT}, **overrides})


def sync(f, *a):
    return defer.maybeDeferred(f, *a)


class FakeChannel:
    """Implements callrouter.escalation.ports.Channel; records messages, fails on demand."""

    def __init__(self):
        self.sent = []
        self.fail = False

    def send(self, message):
        if self.fail:
            return defer.fail(ChannelError("gateway down"))
        self.sent.append(message)
        return defer.succeed(f"id-{len(self.sent)}")


def same_signature(fake, real) -> bool:
    """`fake` an instance, `real` a class: same parameters for send() (self aside)."""
    return list(inspect.signature(fake.send).parameters) == list(inspect.signature(real.send).parameters)[1:]


def clock_at(when: dt.datetime = T0) -> task.Clock:
    clock = task.Clock()
    clock.advance(when.timestamp())
    return clock


def make_engine(db, channels, clock, plan=None, registry=None, settings=SETTINGS, run=sync, events=None):
    plan = plan or dialplan()
    registry = registry or CollectorRegistry()
    engine = EscalationEngine(EscalationRepository(db), channels, lambda practice: plan, settings, clock,
                              EscalationMetrics(registry), run_blocking=run, events=events)
    return engine, registry


def replace(settings, **kw):
    return dataclasses.replace(settings, **kw)


# --- the API over real HTTP on loopback (tests/escalation/test_web*.py) -----------------------------

PASSWORD = "a long enough password"
PEOPLE = {"sec": ("secretary", ("cab",)), "othersec": ("secretary", ("other",)), "doc": ("practitioner", ("cab",)),
          "super": ("supervisor", ())}


def sign_in(users, now):
    """PEOPLE as users, each with a bearer token."""
    import datetime as _dt

    from callrouter.auth.totp import code_at
    from callrouter.store.audit import Actor

    tokens = {}
    for name, (role, practices) in PEOPLE.items():
        new = users.add(Actor("root", "cli"), name, name, role, PASSWORD, now, practices=practices)
        tokens[name], _ = users.login(name, PASSWORD, code_at(new.totp_secret, now), now, "127.0.0.1",
                                      _dt.timedelta(hours=1))
    return tokens


def listen(api):
    """The admin API on a free loopback port: (listening port object, port number)."""
    from twisted.internet import reactor

    from callrouter.web.site import build_site

    port = reactor.listenTCP(0, build_site(api.router(), reactor, reactor.getThreadPool(), reactor, 16384),
                             interface="127.0.0.1")
    return port, port.getHost().port


def http_request(port, method, path, body=None, token=None, headers=None):
    """A Deferred firing with (status, content type, raw body); the client runs in a thread."""
    import http.client
    import json

    from twisted.internet import threads

    def blocking():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        hdrs = dict(headers or {})
        data = body
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        if body is not None and not isinstance(body, bytes):
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            return r.status, r.getheader("Content-Type"), r.read()
        finally:
            conn.close()
    return threads.deferToThread(blocking)


class Gateway(resource.Resource):
    """A fake SMS provider over real HTTP: records each request, answers with a message id."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.requests = []
        self.status = 200

    def render_POST(self, request):
        self.requests.append({"headers": {k.decode().lower(): v[0].decode()
                                          for k, v in request.requestHeaders.getAllRawHeaders()},
                              "path": request.path.decode(), "body": request.content.read()})
        request.setResponseCode(self.status)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"id": f"gw-{len(self.requests)}"}).encode()
