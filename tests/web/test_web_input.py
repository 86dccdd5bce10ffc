"""Bad input gets a clear 4xx, and a failed write leaves nothing behind."""

import pytest_twisted

from callrouter.store import audit as audit_module
from web_support import MAX_BODY, PASSWORD

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
