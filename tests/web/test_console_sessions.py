"""The console's sessions (callrouter.web.sessions) and sign-in (callrouter.web.console): a cookie
standing for a bearer token, ended by inactivity, CSRF-checked; the first sign-in's TOTP
enrolment, on the real SQLite and PostgreSQL store."""

import datetime as dt

import pytest

from callrouter.auth.totp import code_at
from callrouter.config import ConsoleSettings
from callrouter.domain.errors import AuthFailed
from callrouter.store.audit import Actor
from callrouter.store.users import MAX_FAILURES, UserRepository
from callrouter.web.console import ConsoleApi, WRONG_CREDENTIALS, secret_of
from callrouter.web.http import ApiError, HttpRequest
from callrouter.web.router import Context
from callrouter.web.sessions import COOKIE, ConsoleSessions, CsrfRefused, session_id_of

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)
IDLE = dt.timedelta(minutes=15)
PASSWORD = "a long enough password"


def cookie_of(session) -> dict:
    return {"cookie": f"other=1; {COOKIE}={session.id}"}


def test_a_session_cookie_becomes_the_sessions_bearer_token_for_the_api():
    sessions = ConsoleSessions(IDLE)
    s = sessions.open("lea", "tok", T0)
    headers = sessions.authorise("GET", cookie_of(s), T0)
    assert headers["authorization"] == "Bearer tok"


def test_a_session_unused_for_the_inactivity_limit_is_ended_and_use_restarts_the_limit():
    sessions = ConsoleSessions(IDLE)
    s = sessions.open("lea", "tok", T0)
    assert sessions.get(s.id, T0 + IDLE - dt.timedelta(seconds=1)) is not None  # used: the limit restarts
    assert sessions.get(s.id, T0 + 2 * IDLE - dt.timedelta(seconds=2)) is not None
    assert sessions.get(s.id, T0 + 3 * IDLE, touch=False) is None
    assert "authorization" not in sessions.authorise("GET", cookie_of(s), T0 + 3 * IDLE)


def test_the_sessions_ended_by_inactivity_are_handed_over_for_their_tokens_to_be_revoked():
    sessions = ConsoleSessions(IDLE)
    old = sessions.open("lea", "old", T0)
    sessions.open("maud", "new", T0 + IDLE - dt.timedelta(seconds=1))
    assert [s.token for s in sessions.expired(T0 + IDLE + dt.timedelta(seconds=1))] == [old.token]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_a_state_changing_request_with_the_cookie_needs_the_sessions_csrf_token(method):
    sessions = ConsoleSessions(IDLE)
    s = sessions.open("lea", "tok", T0)
    with pytest.raises(CsrfRefused):
        sessions.authorise(method, cookie_of(s), T0)
    with pytest.raises(CsrfRefused):
        sessions.authorise(method, {**cookie_of(s), "x-csrf-token": sessions.open("maud", "t2", T0).csrf}, T0)
    assert sessions.authorise(method, {**cookie_of(s), "x-csrf-token": s.csrf}, T0)["authorization"] == "Bearer tok"


def test_a_bearer_request_is_left_as_it_is_and_needs_no_csrf_token():
    sessions = ConsoleSessions(IDLE)
    s = sessions.open("lea", "tok", T0)
    headers = sessions.authorise("POST", {**cookie_of(s), "authorization": "Bearer mine"}, T0)
    assert headers["authorization"] == "Bearer mine"


def test_the_cookie_is_httponly_samesite_strict_and_secure_only_when_served_over_https():
    plain, tls = ConsoleSessions(IDLE), ConsoleSessions(IDLE, secure_cookie=True)
    s = plain.open("lea", "tok", T0)
    assert plain.set_cookie(s) == f"{COOKIE}={s.id}; Path=/; HttpOnly; SameSite=Strict"
    assert tls.set_cookie(s).endswith("; HttpOnly; SameSite=Strict; Secure")
    assert session_id_of({"cookie": plain.set_cookie(s).split(";")[0]}) == s.id
    assert session_id_of({"cookie": "garbage=\"\\"}) is None


# --- sign-in on the real store ------------------------------------------------------------------

@pytest.fixture
def console(db_env):
    users = UserRepository(db_env, totp_issuer="Secrétariat")
    new = users.add(Actor("root", "cli"), "lea", "Léa", "secretary", PASSWORD, T0, practices=("cab-a",))
    return ConsoleApi(users, ConsoleSessions(IDLE), ConsoleSettings(), dt.timedelta(hours=8)), new.totp_secret


def sign_in(api: ConsoleApi, now: dt.datetime, password: str = PASSWORD, code: str = ""):
    body = f'{{"username": "lea", "password": "{password}", "totp": "{code}"}}'.encode()
    req = HttpRequest("POST", "/api/session", {}, {"content-type": "application/json"}, body, "127.0.0.1", now)
    return api.sign_in(Context(req, {}, None, None))


def test_the_first_sign_in_shows_the_qr_code_of_her_secret_then_her_first_code_opens_a_session(console):
    api, secret = console
    with pytest.raises(ApiError) as refused:
        sign_in(api, T0)
    assert refused.value.status == 409 and refused.value.error == "totp_enrolment"
    assert refused.value.extra["qr"].startswith("data:image/svg+xml")
    assert refused.value.extra["secret"] == secret
    response = sign_in(api, T0, code=code_at(secret, T0))
    assert response.status == 200 and "HttpOnly" in response.headers["Set-Cookie"]
    # Enrolled: a wrong code is now only a wrong code, no QR code any more.
    later = T0 + dt.timedelta(minutes=5)
    with pytest.raises(ApiError) as wrong:
        sign_in(api, later, code="000000")
    assert (wrong.value.status, wrong.value.message) == (401, WRONG_CREDENTIALS)


def test_the_qr_code_is_never_shown_for_a_wrong_password_nor_to_a_name_locked_out(console):
    api, secret = console
    with pytest.raises(ApiError) as wrong:
        sign_in(api, T0, password="not the password at all")
    assert wrong.value.status == 401 and "qr" not in wrong.value.extra
    for _ in range(MAX_FAILURES):
        with pytest.raises(AuthFailed):
            api.users.login("lea", "wrong password!!", "", T0, "x", dt.timedelta(hours=1))
    assert api.users.totp_enrolment("lea", PASSWORD, T0) is None


def test_secret_of_reads_the_secret_from_a_provisioning_uri():
    assert secret_of("otpauth://totp/x:lea?secret=ABC&issuer=x") == "ABC"
