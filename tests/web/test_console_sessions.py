"""The console's sessions (callrouter.web.sessions) on the real session store (SQLite and
PostgreSQL): a cookie standing for a bearer token, kept in the database so that a restart signs
nobody out, ended by inactivity or sign-out with its token revoked, CSRF-checked; and the sign-in
(callrouter.web.console) with the first sign-in's TOTP enrolment."""

import datetime as dt
import hashlib
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from callrouter.auth.totp import code_at
from callrouter.config import ConsoleSettings
from callrouter.domain.errors import AuthFailed
from callrouter.store.audit import Actor
from callrouter.store.models import ApiToken, ConsoleSession
from callrouter.store.sessions import ConsoleSessionRepository
from callrouter.store.users import MAX_FAILURES, UserRepository, hash_token
from callrouter.web.console import ConsoleApi, WRONG_CREDENTIALS, secret_of
from callrouter.web.http import ApiError, HttpRequest
from callrouter.web.router import Context
from callrouter.web.sessions import (
    BEARER_PREFIX, COOKIE, TOUCH_EVERY, ConsoleSessions, CsrfRefused, id_hash, session_id_of,
)

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)
IDLE = dt.timedelta(minutes=15)
TTL = dt.timedelta(hours=8)
PASSWORD = "a long enough password"


def cookie_of(session) -> dict:
    return {"cookie": f"other=1; {COOKIE}={session.id}"}


@pytest.fixture
def store(db_env):
    """Users with API tokens (as the console's sign-in issues them) and the session store."""
    users = UserRepository(db_env)
    tokens = {}
    for name in ("lea", "maud"):
        new = users.add(Actor("root", "cli"), name, name.title(), "secretary", PASSWORD, T0, practices=("cab-a",))
        tokens[name], _ = users.login(name, PASSWORD, code_at(new.totp_secret, T0), T0, "127.0.0.1", TTL)
    return Stores(db_env, users, ConsoleSessionRepository(db_env), tokens)


@dataclass
class Stores:
    db: object
    users: UserRepository
    repo: ConsoleSessionRepository
    tokens: dict

    def sessions(self) -> ConsoleSessions:
        """The console's sessions as a (re)started service builds them: nothing in memory."""
        return ConsoleSessions(self.repo, self.users, IDLE)

    def token_id(self, name: str) -> int | None:
        with self.db.transaction() as s:
            return s.scalar(select(ApiToken.id).where(ApiToken.token_hash == hash_token(self.tokens[name])))


def test_a_session_cookie_becomes_a_bearer_that_authenticates_as_her_token(store):
    sessions = store.sessions()
    s = sessions.open("lea", store.tokens["lea"], T0)
    headers = sessions.authorise("GET", cookie_of(s), T0)
    assert headers["authorization"] == f"Bearer {BEARER_PREFIX}{s.id}"
    user = sessions.authenticate(headers["authorization"].split(" ", 1)[1], T0)
    assert user.username == "lea" and user.practices == ("cab-a",)
    assert sessions.authenticate(store.tokens["maud"], T0).username == "maud"  # API tokens still work
    assert sessions.authenticate(f"{BEARER_PREFIX}not-a-session", T0) is None


def test_only_the_hash_of_the_session_id_and_the_tokens_row_id_are_stored(store):
    s = store.sessions().open("lea", store.tokens["lea"], T0)
    row = store.repo.find(id_hash(s.id))
    assert row.id_hash == hashlib.sha256(s.id.encode()).hexdigest() != s.id
    assert row.token_id == store.token_id("lea") and row.csrf == s.csrf and row.username == "lea"
    with store.db.transaction() as db:
        stored = " ".join(str(v) for r in db.execute(select(ConsoleSession)).all() for v in r[0].__dict__.values())
    assert s.id not in stored and store.tokens["lea"] not in stored


def test_a_restarted_service_knows_the_session_its_csrf_token_and_her(store):
    before = store.sessions()
    s = before.open("lea", store.tokens["lea"], T0)
    after = store.sessions()  # a new process: the same database, nothing in memory
    later = T0 + dt.timedelta(minutes=5)
    again = after.get(s.id, later)
    assert (again.username, again.csrf, again.token_id) == ("lea", s.csrf, s.token_id)
    headers = after.authorise("POST", {**cookie_of(s), "x-csrf-token": s.csrf}, later)
    assert after.authenticate(headers["authorization"].split(" ", 1)[1], later).username == "lea"


def test_a_session_unused_for_the_inactivity_limit_is_ended_and_use_restarts_the_limit(store):
    sessions = store.sessions()
    s = sessions.open("lea", store.tokens["lea"], T0)
    assert sessions.get(s.id, T0 + IDLE - dt.timedelta(seconds=1)) is not None  # used: the limit restarts
    assert sessions.get(s.id, T0 + 2 * IDLE - dt.timedelta(seconds=2)) is not None
    assert sessions.get(s.id, T0 + 3 * IDLE, touch=False) is None
    assert "authorization" not in sessions.authorise("GET", cookie_of(s), T0 + 3 * IDLE)
    assert store.repo.find(id_hash(s.id)) is None  # its row deleted
    assert store.token_id("lea") is None  # and its token revoked


def test_her_use_is_written_at_most_once_a_minute(store):
    sessions = store.sessions()
    s = sessions.open("lea", store.tokens["lea"], T0)
    sessions.get(s.id, T0 + dt.timedelta(seconds=30))
    assert store.repo.find(id_hash(s.id)).last_seen == T0
    sessions.get(s.id, T0 + dt.timedelta(seconds=61))
    assert store.repo.find(id_hash(s.id)).last_seen == T0 + dt.timedelta(seconds=61)
    sessions.get(s.id, T0 + dt.timedelta(seconds=90), touch=False)  # an event stream's keepalive: no use
    sessions.get(s.id, T0 + dt.timedelta(seconds=100))
    assert store.repo.find(id_hash(s.id)).last_seen == T0 + dt.timedelta(seconds=61)


def test_the_sweep_closes_the_sessions_ended_by_inactivity_and_revokes_their_tokens(store):
    sessions = store.sessions()
    old = sessions.open("lea", store.tokens["lea"], T0)
    new = sessions.open("maud", store.tokens["maud"], T0 + IDLE)
    gone = sessions.expired(T0 + IDLE + TOUCH_EVERY + dt.timedelta(seconds=1))
    assert [row.username for row in gone] == ["lea"]
    assert store.token_id("lea") is None and store.token_id("maud") is not None
    assert sessions.get(old.id, T0 + IDLE + TOUCH_EVERY) is None
    assert sessions.get(new.id, T0 + IDLE + TOUCH_EVERY) is not None


def test_a_session_whose_token_was_revoked_ends_with_it(store):
    sessions = store.sessions()
    s = sessions.open("lea", store.tokens["lea"], T0)
    store.users.disable(Actor("root", "cli"), "lea", T0)  # she left: her tokens deleted at once
    assert sessions.authenticate(f"{BEARER_PREFIX}{s.id}", T0 + dt.timedelta(seconds=1)) is None
    assert store.repo.find(id_hash(s.id)) is None


def test_signing_out_deletes_the_row_and_revokes_the_token(store):
    sessions = store.sessions()
    s = sessions.open("lea", store.tokens["lea"], T0)
    sessions.close(s.id)
    assert store.repo.find(id_hash(s.id)) is None and store.token_id("lea") is None
    assert store.sessions().get(s.id, T0) is None


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_a_state_changing_request_with_the_cookie_needs_the_sessions_csrf_token(store, method):
    sessions = store.sessions()
    s = sessions.open("lea", store.tokens["lea"], T0)
    other = sessions.open("maud", store.tokens["maud"], T0)
    with pytest.raises(CsrfRefused):
        sessions.authorise(method, cookie_of(s), T0)
    with pytest.raises(CsrfRefused):
        sessions.authorise(method, {**cookie_of(s), "x-csrf-token": other.csrf}, T0)
    headers = sessions.authorise(method, {**cookie_of(s), "x-csrf-token": s.csrf}, T0)
    assert headers["authorization"] == f"Bearer {BEARER_PREFIX}{s.id}"


def test_a_bearer_request_is_left_as_it_is_and_needs_no_csrf_token(store):
    sessions = store.sessions()
    s = sessions.open("lea", store.tokens["lea"], T0)
    headers = sessions.authorise("POST", {**cookie_of(s), "authorization": "Bearer mine"}, T0)
    assert headers["authorization"] == "Bearer mine"


def test_the_cookie_is_httponly_samesite_strict_and_secure_only_when_served_over_https(store):
    plain, tls = store.sessions(), ConsoleSessions(store.repo, store.users, IDLE, secure_cookie=True)
    s = plain.open("lea", store.tokens["lea"], T0)
    assert plain.set_cookie(s) == f"{COOKIE}={s.id}; Path=/; HttpOnly; SameSite=Strict"
    assert tls.set_cookie(s).endswith("; HttpOnly; SameSite=Strict; Secure")
    assert session_id_of({"cookie": plain.set_cookie(s).split(";")[0]}) == s.id
    assert session_id_of({"cookie": "garbage=\"\\"}) is None


# --- sign-in on the real store ------------------------------------------------------------------

@pytest.fixture
def console(db_env):
    users = UserRepository(db_env, totp_issuer="Secrétariat")
    new = users.add(Actor("root", "cli"), "lea", "Léa", "secretary", PASSWORD, T0, practices=("cab-a",))
    sessions = ConsoleSessions(ConsoleSessionRepository(db_env), users, IDLE)
    return ConsoleApi(users, sessions, ConsoleSettings(), dt.timedelta(hours=8)), new.totp_secret


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
