"""Bad input gets a clear 4xx, and a failed write leaves nothing behind."""

import datetime as dt
import re

import pytest
import pytest_twisted

from callrouter.auth.totp import code_at
from callrouter.store import audit as audit_module
from callrouter.store.audit import AuditLog
from callrouter.store.calls import CallRepository
from callrouter.store.users import UserRepository
from callrouter.web.api import Api
from web_support import MAX_BODY, PASSWORD, ROOT, Client, FakeDialplans, now

NEW = {"username": "newbie", "display_name": "New", "role": "secretary", "password": PASSWORD}


@pytest_twisted.inlineCallbacks
def test_malformed_json(env):
    r = yield env.client.call("POST", "/api/users", b'{"username": "x",', env.tokens["admin"],
                              {"Content-Type": "application/json"})
    assert r.status == 400
    assert r.json()["error"] == "malformed_json"
    assert r.json()["message"].startswith("malformed JSON: ")


@pytest_twisted.inlineCallbacks
def test_body_must_be_an_object(env):
    r = yield env.client.call("POST", "/api/users", [1, 2], env.tokens["admin"])
    assert r.status == 400 and r.json()["message"] == "body must be a JSON object"


@pytest_twisted.inlineCallbacks
def test_unknown_fields_are_named(env):
    r = yield env.client.call("POST", "/api/users", {**NEW, "is_admin": True, "colour": "red"},
                              env.tokens["admin"])
    assert r.status == 400
    assert r.json()["message"].startswith("unknown field(s): colour, is_admin; expected: ")


@pytest_twisted.inlineCallbacks
def test_wrong_types_and_missing_fields_are_all_reported(env):
    body = {"username": 42, "display_name": "X", "password": PASSWORD, "external": "yes",
            "practices": ["cab-a", 3]}
    r = yield env.client.call("POST", "/api/users", body, env.tokens["admin"])
    assert r.status == 400
    assert r.json()["problems"] == [
        "field 'username' must be a string, got integer",
        "field 'role' is required",
        "field 'external' must be a boolean, got string",
        "field 'practices' must contain only strings, got integer",
    ]


@pytest_twisted.inlineCallbacks
def test_values_outside_their_choices(env):
    r = yield env.client.call("POST", "/api/users", {**NEW, "role": "god"}, env.tokens["admin"])
    assert r.status == 400
    assert "field 'role' must be one of: administrator" in r.json()["message"]


@pytest_twisted.inlineCallbacks
def test_oversized_body_is_refused(env):
    body = {**NEW, "display_name": "x" * (MAX_BODY + 10)}
    r = yield env.client.call("POST", "/api/users", body, env.tokens["admin"])
    assert r.status == 413 and r.json()["error"] == "body_too_large"
    assert [u.username for u in env.users.list() if u.username == "newbie"] == []


@pytest_twisted.inlineCallbacks
def test_json_content_type_is_required(env):
    r = yield env.client.call("POST", "/api/users", b"username=x", env.tokens["admin"],
                              {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 415


@pytest_twisted.inlineCallbacks
def test_bad_query_parameters(env):
    r = yield env.client.call("GET", "/api/calls?limit=0&since=yesterday&colour=red",
                              token=env.tokens["admin"])
    assert r.status == 400
    assert r.json()["problems"] == [
        "unknown parameter(s): colour",
        "parameter 'since': expected an ISO 8601 date-time, got 'yesterday'",
        "parameter 'limit': must be between 1 and 1000",
    ]
    r = yield env.client.call("GET", "/api/calls?since=2026-03-02T08:00:00",
                              token=env.tokens["admin"])
    assert "needs a time zone" in r.json()["message"]


@pytest_twisted.inlineCallbacks
def test_unknown_path_and_wrong_method(env):
    r = yield env.client.call("GET", "/api/nothing", token=env.tokens["admin"])
    assert r.status == 404
    r = yield env.client.call("DELETE", "/api/users", token=env.tokens["admin"])
    assert r.status == 405 and "use GET, POST" in r.json()["message"]


@pytest_twisted.inlineCallbacks
def test_duplicate_user_is_a_conflict(env):
    r = yield env.client.call("POST", "/api/users", {**NEW, "username": "sec"},
                              env.tokens["admin"])
    assert r.status == 409


@pytest_twisted.inlineCallbacks
def test_refused_user_writes_nothing(env):
    before = len(env.audit.query(limit=1000))
    r = yield env.client.call("POST", "/api/users", {**NEW, "practices": ["Not Valid"]},
                              env.tokens["admin"])
    assert r.status == 422 and "invalid practice" in r.json()["reason"]
    assert "newbie" not in [u.username for u in env.users.list()]
    assert len(env.audit.query(limit=1000)) == before


@pytest_twisted.inlineCallbacks
def test_failure_midway_through_a_write_rolls_it_all_back(env, monkeypatch):
    """The user row is inserted, then auditing fails: neither the user nor an entry remains."""
    real_append = audit_module.append

    def failing_append(session, actor, action, *args, **kwargs):
        if action == "user.create":
            raise RuntimeError("disk full")
        return real_append(session, actor, action, *args, **kwargs)

    monkeypatch.setattr("callrouter.store.users.append", failing_append)
    r = yield env.client.call("POST", "/api/users", NEW, env.tokens["admin"])
    assert r.status == 500
    assert r.json() == {"error": "internal", "message": "internal error; nothing was changed"}
    assert "newbie" not in [u.username for u in env.users.list()]
    assert env.audit.verify().ok


@pytest_twisted.inlineCallbacks
def test_created_user_gets_201_and_totp_enrolment(env):
    r = yield env.client.call("POST", "/api/users", {**NEW, "practices": ["cab-a"]},
                              env.tokens["admin"])
    assert r.status == 201
    assert r.json()["totp_uri"].startswith("otpauth://totp/")
    assert r.json()["user"]["practices"] == ["cab-a"]


def _chunked_post(port, token, size):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        chunks = (b'{"username": "' + b"x" * 1024 for _ in range(size // 1024))
        conn.request("POST", "/api/users", body=chunks, encode_chunked=True,
                     headers={"Content-Type": "application/json",
                              "Authorization": f"Bearer {token}"})
        return conn.getresponse().status
    finally:
        conn.close()


@pytest_twisted.inlineCallbacks
def test_oversized_chunked_body_without_length_is_refused(env):
    from twisted.internet import threads

    status = yield threads.deferToThread(_chunked_post, env.client.port, env.tokens["admin"],
                                         4 * MAX_BODY)
    assert status == 413


@pytest.fixture
def escalation_env(db_env, tmp_path):
    """The API with its escalation routes served (a real repository on SQLite or PostgreSQL)."""
    from twisted.internet import reactor

    from callrouter.escalation.ack import Acknowledger
    from callrouter.store.escalations import EscalationRepository
    from callrouter.web.escalations import EscalationApi
    from callrouter.web.site import build_site

    users = UserRepository(db_env)
    t = now()
    new = users.add(ROOT, "admin", "Admin", "administrator", PASSWORD, t)
    token, _ = users.login("admin", PASSWORD, code_at(new.totp_secret, t), t, "127.0.0.1",
                           dt.timedelta(hours=1))
    repo = EscalationRepository(db_env)
    audit = AuditLog(db_env)
    api = Api(users, CallRepository(db_env), audit, FakeDialplans(),
              dt.timedelta(hours=1), EscalationApi(audit, repo, Acknowledger(repo, "s", lambda v: None),
                                                   None))
    port = reactor.listenTCP(0, build_site(api.router(), reactor, reactor.getThreadPool(), reactor,
                                           MAX_BODY), interface="127.0.0.1")
    try:
        yield api, Client(port.getHost().port), token
    finally:
        pytest_twisted.blockon(port.stopListening())


@pytest_twisted.inlineCallbacks
def test_an_integer_path_parameter_beyond_any_stored_id_is_not_found(escalation_env):
    """Ids past 32 and 64 bits, zero, negative or non-decimal are a 404, never a database error."""
    _, client, token = escalation_env
    for raw in ("1", str(2**31), str(2**63), str(2**64), "9" * 40, "0", "-1", "%2B5", "1e3", "%D9%A1"):
        r = yield client.call("GET", f"/api/escalations/{raw}", token=token)
        assert r.status == 404, (raw, r.status, r.body)
        r = yield client.call("POST", f"/api/escalations/{raw}/ack", token=token)
        assert r.status == 404, (raw, r.status, r.body)


def _sample_path(pattern: str) -> str:
    return re.sub(r"\{\w+\}", "1", pattern)


@pytest_twisted.inlineCallbacks
def test_every_405_names_the_allowed_methods_in_its_allow_header(escalation_env):
    """For every served path, a method it does not serve gets a 405 with `Allow` listing those
    it does (the same list as the message)."""
    api, client, token = escalation_env
    routes = api.routes()
    for path in sorted({_sample_path(r.pattern) for r in routes}):
        allowed = {r.method for r in routes
                   if r.regex.match(path) and r.params(r.regex.match(path)) is not None}
        wrong = next(m for m in ("PATCH", "DELETE", "PUT", "GET") if m not in allowed)
        r = yield client.call(wrong, path, token=token)
        assert r.status == 405, (wrong, path, r.status)
        assert r.headers.get("allow") == ", ".join(sorted(allowed)), (wrong, path, r.headers)
        assert r.json()["message"].endswith("use " + ", ".join(sorted(allowed)))
