"""The HTTP settings a SIGHUP applies without a restart (callrouter.live_settings' `http` part,
callrouter.web.service.AdminService.follow): the body cap and HSTS of the next request, the console
sessions' inactivity limit from an open session's next request and their cookie's Secure flag, the
next login's token lifetime (a token issued keeps its own), and the default expiry of the next
callback task made through the API. On the real stores (SQLite and PostgreSQL) and a real HTTP
server on loopback; the session and token clocks are injected."""

import datetime as dt

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.web.test.requesthelper import DummyChannel

from callrouter.auth.totp import code_at
from callrouter.config import ConsoleSettings, parse_settings
from callrouter.live_settings import running_parts
from callrouter.store.sessions import ConsoleSessionRepository
from callrouter.store.tasks import TaskRepository
from callrouter.store.users import UserRepository
from callrouter.web.api import Api
from callrouter.web.console import ConsoleApi
from callrouter.web.http import Live
from callrouter.web.service import AdminService
from callrouter.web.sessions import COOKIE, ConsoleSessions
from callrouter.web.site import build_site, follow_http
from callrouter.web.tasks import TaskApi
from web_support import MAX_BODY, PASSWORD, ROOT, Client, now

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)
MINUTE = dt.timedelta(minutes=1)
STEP = dt.timedelta(seconds=30)  # a TOTP code is good once: each login at another step


def reloaded(**http) -> "object":
    """Settings as a reloaded file gives them (the console and the token lifetime changed)."""
    console = http.pop("console", {})
    ttl = http.pop("token_ttl_minutes", 8 * 60)
    return parse_settings({"http": {**http, "console": console}, "auth": {"token_ttl_minutes": ttl}})


class Console:
    def __init__(self, db):
        self.users = UserRepository(db)
        new = self.users.add(ROOT, "lea", "Léa", "secretary", PASSWORD, T0, practices=("cab-a",))
        self.secret = new.totp_secret
        self.sessions = ConsoleSessions(ConsoleSessionRepository(db), self.users, 15 * MINUTE)
        self.api = Api(self.users, None, None, None, dt.timedelta(hours=8))
        self.console = ConsoleApi(self.users, self.sessions, ConsoleSettings(), self.api.token_ttl)
        self.site = build_site(self.api.router(), reactor, reactor.getThreadPool(), reactor, MAX_BODY)
        self.admin = AdminService(self.site, self.console)
        self.apply = running_parts({"admin_http": self.admin, "api": self.api})["http"]

    def token(self, at):
        token, expires = self.users.login("lea", PASSWORD, code_at(self.secret, at), at, "127.0.0.1",
                                          self.api.token_ttl())
        return token, expires


@pytest.fixture
def console(db_env):
    return Console(db_env)


def test_an_open_session_is_held_to_the_new_inactivity_limit_from_its_next_request(console):
    token, _ = console.token(T0 - MINUTE)  # each login its own TOTP step
    shortened = console.sessions.open("lea", token, T0)
    token2, _ = console.token(T0 - STEP)
    lengthened = console.sessions.open("lea", token2, T0)
    console.apply(reloaded(console={"inactivity_minutes": 5}))
    assert console.sessions.get(shortened.id, T0 + 4 * MINUTE) is not None  # still in use: keeps working
    assert console.sessions.get(shortened.id, T0 + 10 * MINUTE) is None  # 6 idle minutes: over (was 15)
    console.apply(reloaded(console={"inactivity_minutes": 60}))
    assert console.sessions.get(lengthened.id, T0 + 40 * MINUTE) is not None  # would have ended at 15
    assert console.console._describe("lea", None)["inactivity_minutes"] == 60  # what the page is told


def test_the_sweep_closes_by_the_new_limit(console):
    token, _ = console.token(T0)
    s = console.sessions.open("lea", token, T0)
    assert console.sessions.expired(T0 + 10 * MINUTE) == []
    console.apply(reloaded(console={"inactivity_minutes": 5}))
    assert [row.username for row in console.sessions.expired(T0 + 10 * MINUTE)] == ["lea"]
    assert console.sessions.get(s.id, T0 + 10 * MINUTE) is None


def test_the_next_cookie_has_the_new_secure_flag(console):
    token, _ = console.token(T0)
    s = console.sessions.open("lea", token, T0)
    assert "Secure" not in console.sessions.set_cookie(s)
    console.apply(reloaded(console={"cookie_secure": True}))
    assert console.sessions.set_cookie(s).endswith("; Secure") and f"{COOKIE}={s.id}" in console.sessions.set_cookie(s)
    assert "Secure" in console.sessions.clear_cookie()
    assert console.sessions.get(s.id, T0 + MINUTE) is not None  # the session itself goes on


def test_a_new_token_gets_the_new_lifetime_and_an_issued_one_keeps_its_own(console):
    before, expires_before = console.token(T0)
    assert expires_before == T0 + dt.timedelta(hours=8)
    console.apply(reloaded(token_ttl_minutes=30))
    after, expires_after = console.token(T0 + STEP)
    assert expires_after == T0 + STEP + 30 * MINUTE
    assert console.console.token_ttl() == 30 * MINUTE  # the console's sign-in shares the API's
    assert console.users.authenticate(after, T0 + STEP + 30 * MINUTE) is None
    assert console.users.authenticate(before, T0 + 7 * dt.timedelta(hours=1)).username == "lea"


@pytest_twisted.inlineCallbacks
def test_the_next_login_over_http_gets_the_new_lifetime(console):
    port = reactor.listenTCP(0, console.site, interface="127.0.0.1")
    client = Client(port.getHost().port)
    try:
        console.apply(reloaded(token_ttl_minutes=45))
        t = now()
        r = yield client.call("POST", "/api/login",
                              {"username": "lea", "password": PASSWORD, "totp": code_at(console.secret, t)})
        assert r.status == 200, r.body
        lifetime = dt.datetime.fromisoformat(r.json()["expires_at"]) - t
        assert 44 * MINUTE < lifetime <= 46 * MINUTE
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_the_next_request_has_the_new_body_cap(console):
    port = reactor.listenTCP(0, console.site, interface="127.0.0.1")
    client = Client(port.getHost().port)
    body = {"username": "lea", "password": "x" * 900, "totp": "000000"}
    try:
        r = yield client.call("POST", "/api/login", body)
        assert r.status == 401  # read whole, refused for what it says
        console.apply(reloaded(max_body_bytes=512))
        r = yield client.call("POST", "/api/login", body)
        assert r.status == 413
        console.apply(reloaded(max_body_bytes=4096))
        r = yield client.call("POST", "/api/login", body)
        assert r.status == 401
    finally:
        yield port.stopListening()


def test_hsts_and_the_cap_of_a_request_under_way_stay_as_it_started(console):
    site = build_site(console.api.router(), reactor,
                      reactor.getThreadPool(), reactor, MAX_BODY, hsts_max_age_s=3600)
    under_way = site.requestFactory(DummyChannel())
    follow_http(site, 1000, 60)
    fresh = site.requestFactory(DummyChannel())
    assert (fresh.max_body, fresh.hsts) == (1000, b"max-age=60")
    assert (under_way.max_body, under_way.hsts) == (MAX_BODY, b"max-age=3600")
    follow_http(site, 1000, None)  # served over plain HTTP after all: no header
    assert site.requestFactory(DummyChannel()).hsts is None


@pytest_twisted.inlineCallbacks
def test_the_next_task_made_through_the_api_gets_the_new_default_expiry(env):
    expiry = Live(4 * 3600.0)  # as callrouter.app wires it: the controller's settings, read at use
    task_api = TaskApi(env.audit, TaskRepository(env.db), users=env.users, calls=env.calls,
                       default_expiry=lambda: dt.timedelta(seconds=expiry()))
    a = env.api
    api = Api(a.users, a.calls, a.audit, a.dialplans, a.token_ttl, tasks=task_api)
    port = reactor.listenTCP(0, build_site(api.router(), reactor, reactor.getThreadPool(), reactor, MAX_BODY),
                             interface="127.0.0.1")
    client = Client(port.getHost().port)

    def lifetime(task):
        return dt.datetime.fromisoformat(task["expires_at"]) - dt.datetime.fromisoformat(task["created_at"])

    try:
        r = yield client.call("POST", "/api/practices/cab-a/tasks", {"number": "+33612345678"},
                              token=env.tokens["sec"])
        assert r.status == 201, r.body
        assert lifetime(r.json()) == dt.timedelta(hours=4)
        expiry.follow(1800.0)
        r = yield client.call("POST", "/api/practices/cab-a/tasks", {"number": "+33612345679"},
                              token=env.tokens["sec"])
        assert lifetime(r.json()) == dt.timedelta(minutes=30)
    finally:
        yield port.stopListening()


@pytest.mark.parametrize("key, value, part", [
    ("http.max_body_bytes", 1000, "http"), ("http.hsts_max_age_s", 60, "http"),
    ("http.console.inactivity_minutes", 5, "http"), ("http.console.cookie_secure", True, "http"),
    ("auth.token_ttl_minutes", 30, "http"), ("controller.callback_expiry_s", 1800.0, "calls"),
])
def test_the_reload_applies_these_keys_live(key, value, part):
    from callrouter import settings_diff as diff
    old = parse_settings({})
    new = diff._set(old, key.split("."), value)
    plan = diff.plan(old, new)
    assert [c.key for c in plan.live] == [key] and not plan.restart
    assert plan.parts() == (part,)
    assert diff.applied(old, new, plan) == new
