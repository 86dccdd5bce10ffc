"""Authentication and permission checks on every route, over real HTTP."""

import datetime as dt

import pytest_twisted

from callrouter.auth.permissions import allowed
from callrouter.auth.totp import code_at
from callrouter.store.audit import Actor
from web_support import PASSWORD, PEOPLE, now

# One representative request per route: (method, path, body).
REQUESTS = [
    ("POST", "/api/logout", None),
    ("GET", "/api/me", None),
    ("GET", "/api/roles", None),
    ("GET", "/api/users", None),
    ("POST", "/api/users", {"username": "newbie", "display_name": "N", "role": "secretary",
                            "password": PASSWORD}),
    ("GET", "/api/users/sec", None),
    ("PUT", "/api/users/nobody/role", {"role": "supervisor"}),
    ("POST", "/api/users/nobody/disable", None),
    ("POST", "/api/users/sec/grants", {"module": "exports", "action": "run"}),
    ("DELETE", "/api/users/sec/grants/exports/run", None),
    ("PUT", "/api/users/sec/practices", {"practices": ["cab-a"]}),
    ("GET", "/api/secretaries", None),
    ("GET", "/api/secretaries/states", None),
    ("GET", "/api/secretaries/me", None),
    ("GET", "/api/secretaries/me/call", None),
    ("POST", "/api/secretaries/me/login", None),
    ("POST", "/api/secretaries/me/logout", None),
    ("POST", "/api/secretaries/me/pause", {"reason": "pause"}),
    ("POST", "/api/secretaries/me/resume", None),
    ("POST", "/api/secretaries/sec/pause", {"reason": "pause"}),
    ("POST", "/api/secretaries/sec/resume", None),
    ("POST", "/api/secretaries/sec/logout", None),
    ("GET", "/api/calls", None),
    ("GET", "/api/calls/none", None),
    ("GET", "/api/exports/calls", None),
    ("GET", "/api/audit", None),
    ("GET", "/api/audit/verify", None),
    ("GET", "/api/dialplans/status", None),
    ("GET", "/api/practices/cab-a/card", None),
    ("GET", "/api/escalations", None),
    ("POST", "/api/escalations", {"practice": "cab-a", "tier": "vital", "callback_number": "+33611111111"}),
    ("POST", "/api/calls/none/escalate", {"tier": "vital"}),
    ("GET", "/api/calls/none/colleagues", None),
    ("POST", "/api/calls/none/transfer", {"to": "sec"}),
    ("GET", "/api/escalations/1", None),
    ("POST", "/api/escalations/1/ack", None),
    ("POST", "/api/escalations/1/take", None),
    ("GET", "/api/exports/escalations", None),
    ("GET", "/api/reports/escalations", None),
    ("GET", "/api/practices/cab-a/tasks", None),
    ("POST", "/api/practices/cab-a/tasks", {"number": "+33611111111"}),
    ("GET", "/api/tasks/none", None),
    ("POST", "/api/tasks/none/assign", None),
    ("POST", "/api/tasks/none/done", None),
    ("POST", "/api/tasks/none/cancel", None),
    ("POST", "/api/tasks/none/call", None),
]


def _route(env, method, path):
    for route in env.api.routes():
        if route.method == method and route.regex.match(path):
            return route
    raise AssertionError(f"no route for {method} {path}")


def test_every_route_is_exercised(env):
    routes = {(r.method, r.pattern) for r in env.api.routes() if r.authenticated}
    exercised = {(m, _route(env, m, p).pattern) for m, p, _ in REQUESTS}
    assert routes == exercised


@pytest_twisted.inlineCallbacks
def test_401_without_or_with_a_bad_token_on_every_route(env):
    for method, path, body in REQUESTS:
        for token in (None, "forged-token"):
            r = yield env.client.call(method, path, body, token)
            assert r.status == 401, (method, path)
            assert r.json()["error"] == "unauthorized"
            assert r.headers["www-authenticate"] == "Bearer"


@pytest_twisted.inlineCallbacks
def test_each_role_gets_403_with_the_reason_exactly_where_the_table_refuses(env):
    for name, (role, _, _) in PEOPLE.items():
        if name == "admin":
            continue  # admin's logout would end the session used below; admin is checked last
        for method, path, body in REQUESTS:
            if path == "/api/logout":
                continue
            route = _route(env, method, path)
            user = env.users.get(name)
            refusals = [allowed(role, m, a, user.attrs) for m, a in route.permissions]
            refused = [reason for ok, reason in refusals if not ok]
            r = yield env.client.call(method, path, body, env.tokens[name])
            if refused:
                assert r.status == 403, (name, method, path, r.body)
                assert r.json()["reason"] == refused[0]
                assert r.json()["error"] == "forbidden"
            else:
                assert r.status not in (401, 403), (name, method, path, r.body)


@pytest_twisted.inlineCallbacks
def test_refusals_read_clearly(env):
    r = yield env.client.call("GET", "/api/users", token=env.tokens["sec"])
    assert r.json()["reason"] == "role secretary may not read users"
    r = yield env.client.call("GET", "/api/exports/calls", token=env.tokens["doc"])
    assert r.json()["reason"] == "role practitioner may not run exports"
    r = yield env.client.call("POST", "/api/users/sec/disable", token=env.tokens["super"])
    assert r.json()["reason"] == "role supervisor may not write users"


@pytest_twisted.inlineCallbacks
def test_login_with_password_and_totp_then_logout(env):
    t = now()
    new = env.users.add(Actor("root", "cli"), "eve", "Eve", "supervisor", PASSWORD, t)
    code = code_at(new.totp_secret, t)
    r = yield env.client.call("POST", "/api/login",
                              {"username": "eve", "password": PASSWORD, "totp": "000000"
                               if code != "000000" else "111111"})
    assert r.status == 401 and r.json()["message"] == "invalid username, password or code"
    r = yield env.client.call("POST", "/api/login",
                              {"username": "eve", "password": PASSWORD, "totp": code})
    assert r.status == 200, r.body
    token = r.json()["token"]
    assert dt.datetime.fromisoformat(r.json()["expires_at"]) > t
    me = yield env.client.call("GET", "/api/me", token=token)
    assert me.json()["username"] == "eve"
    yield env.client.call("POST", "/api/logout", token=token)
    r = yield env.client.call("GET", "/api/me", token=token)
    assert r.status == 401
    actions = [e.action for e in env.audit.query(actor="eve")]
    assert actions == ["auth.login", "auth.login_failed"]


@pytest_twisted.inlineCallbacks
def test_disabling_a_user_invalidates_their_token_at_once(env):
    r = yield env.client.call("GET", "/api/calls", token=env.tokens["sec"])
    assert r.status == 200
    r = yield env.client.call("POST", "/api/users/sec/disable", token=env.tokens["admin"])
    assert r.status == 200 and r.json()["enabled"] is False
    r = yield env.client.call("GET", "/api/calls", token=env.tokens["sec"])
    assert r.status == 401


@pytest_twisted.inlineCallbacks
def test_external_secretary_cannot_be_granted_practitioner_rights(env):
    r = yield env.client.call("POST", "/api/users/extsec/grants",
                              {"module": "practitioner", "action": "act"}, env.tokens["admin"])
    assert r.status == 422
    assert r.json()["reason"] == "an external secretary can never act as a practitioner"
    assert env.users.get("extsec").grants == ()


@pytest_twisted.inlineCallbacks
def test_making_a_secretary_with_practitioner_rights_external_is_refused(env):
    r = yield env.client.call("POST", "/api/users/sec/grants",
                              {"module": "practitioner", "action": "act"}, env.tokens["admin"])
    assert r.status == 200
    r = yield env.client.call("PUT", "/api/users/sec/role",
                              {"role": "secretary", "external": True}, env.tokens["admin"])
    assert r.status == 422
    assert r.json()["reason"] == ("an external secretary can never act as a practitioner: "
                                  "revoke practitioner:act first")
    assert env.users.get("sec").external is False
    r = yield env.client.call("DELETE", "/api/users/sec/grants/practitioner/act",
                              token=env.tokens["admin"])
    r = yield env.client.call("PUT", "/api/users/sec/role",
                              {"role": "secretary", "external": True}, env.tokens["admin"])
    assert r.status == 200 and r.json()["external"] is True
    assert env.audit.query()[0].action == "user.role"
