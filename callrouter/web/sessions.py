"""The console's browser sessions: a cookie standing for an API bearer token, kept server-side and
in the database, so that a restart of the service signs nobody out.

Signing in to the console (callrouter.web.console) is the API's login (password + TOTP) whose
bearer token never reaches the page: the session stands for it, behind a random session id sent
as a cookie that is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it)
and Secure when the console is served over HTTPS. The store (callrouter.store.sessions) keeps the
SHA-256 of the session id, the token's row id (not the token: only its hash is stored), the CSRF
token and the last use; this node keeps the sessions it served in memory in front of it.

A request to /api/* carrying the cookie and no Authorization header is handled as the same request
with the bearer `console-session.<session id>`, which `authenticate` resolves to the token's user
(UserRepository.authenticate_token_id): same permissions, same practice scope as the token API,
and a token revoked or expired, or a user disabled, ends the session at once. Anyone holding the
session id could use it so; they could use the cookie as well.

- Inactivity: a session unused for `inactivity` is ended (its row deleted, its token revoked); the
  event stream's keepalives do not count as use, the secretary's own requests do. `last_seen` is
  written at most once every TOUCH_EVERY per session, so right after a restart (or on another
  node) the limit may be reached up to TOUCH_EVERY early, and the periodic sweep closes a session
  up to TOUCH_EVERY late.
- CSRF: each session has a random token the page reads from GET /api/session and sends back in the
  `X-CSRF-Token` header; a state-changing request (anything but GET/HEAD/OPTIONS) with the cookie
  and without the session's token is refused (403) before any handler runs.

Every method that takes `now` may reach the database: call it from a thread of the pool, never on
the reactor thread. Thread-safe.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, replace
from http.cookies import CookieError, SimpleCookie
from typing import Any, Mapping, Protocol

from callrouter.ports import UserView

COOKIE = "callrouter_console"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BEARER_PREFIX = "console-session."
TOUCH_EVERY = dt.timedelta(minutes=1)


class CsrfRefused(Exception):
    """A state-changing request with a session cookie but without the session's CSRF token."""


class SessionStore(Protocol):
    """Where sessions outlive the process (callrouter.store.sessions.ConsoleSessionRepository);
    rows are read by attribute: id_hash, token_id, username, csrf, last_seen."""

    def open(self, id_hash: str, token: str, username: str, csrf: str, now: dt.datetime) -> Any: ...
    def find(self, id_hash: str) -> Any | None: ...
    def touch(self, id_hash: str, now: dt.datetime) -> None: ...
    def close(self, id_hash: str) -> Any | None: ...
    def close_idle(self, unused_since: dt.datetime) -> list[Any]: ...


class SessionUsers(Protocol):
    """Who a token is (callrouter.store.users.UserRepository)."""

    def authenticate(self, token: str, now: dt.datetime) -> UserView | None: ...
    def authenticate_token_id(self, token_id: int, now: dt.datetime) -> UserView | None: ...


@dataclass(frozen=True)
class Session:
    id: str  # the id the cookie carries
    username: str
    token_id: int  # the API token's row id this session stands for
    csrf: str
    last_seen: dt.datetime


@dataclass
class _Live:
    session: Session
    written: dt.datetime  # the last_seen the store has


class ConsoleSessions:
    def __init__(self, store: SessionStore, users: SessionUsers, inactivity: dt.timedelta,
                 secure_cookie: bool = False) -> None:
        self.store, self.users = store, users
        self.inactivity = inactivity
        self.secure_cookie = secure_cookie
        self._live: dict[str, _Live] = {}  # id hash -> the sessions this node served
        self._lock = threading.Lock()

    def follow(self, inactivity: dt.timedelta, secure_cookie: bool) -> None:
        """The settings reload: every session, open or new, is held to `inactivity` from its next
        request (or the next sweep), and the next cookie set or cleared has the new Secure flag."""
        self.inactivity, self.secure_cookie = inactivity, secure_cookie

    def open(self, username: str, token: str, now: dt.datetime) -> Session:
        """A session for the bearer `token` just issued to `username`."""
        session_id = secrets.token_urlsafe(32)
        row = self.store.open(id_hash(session_id), token, username, secrets.token_urlsafe(32), now)
        session = Session(session_id, username, row.token_id, row.csrf, now)
        with self._lock:
            self._live[id_hash(session_id)] = _Live(session, now)
        return session

    def get(self, session_id: str | None, now: dt.datetime, touch: bool = True) -> Session | None:
        """The live session with this id (its use at `now` recorded when `touch`), else None; a
        session found past its inactivity limit is closed."""
        if not session_id:
            return None
        key = id_hash(session_id)
        with self._lock:
            live = self._live.get(key)
        if live is None or now - live.session.last_seen >= self.inactivity:
            live = self._load(key, session_id, live)  # unknown here, or seen since on another node
            if live is None or now - live.session.last_seen >= self.inactivity:
                self.close(session_id)
                return None
        if touch:
            live = _Live(replace(live.session, last_seen=max(now, live.session.last_seen)), live.written)
            if now - live.written >= TOUCH_EVERY:
                self.store.touch(key, now)
                live.written = now
        with self._lock:
            self._live[key] = live
        return live.session

    def _load(self, key: str, session_id: str, known: _Live | None) -> _Live | None:
        row = self.store.find(key)
        if row is None:
            return None
        seen = max(row.last_seen, known.session.last_seen) if known else row.last_seen
        return _Live(Session(session_id, row.username, row.token_id, row.csrf, seen), row.last_seen)

    def close(self, session_id: str) -> Session | None:
        """Sign-out or inactivity: the session forgotten, its row deleted and its token revoked."""
        key = id_hash(session_id)
        with self._lock:
            live = self._live.pop(key, None)
        row = self.store.close(key)
        if live is not None:
            return live.session
        return None if row is None else Session(session_id, row.username, row.token_id, row.csrf, row.last_seen)

    def expired(self, now: dt.datetime) -> list[Any]:
        """Closes the sessions past their inactivity limit (rows deleted, tokens revoked) and
        returns the stored rows closed."""
        limit = now - self.inactivity
        gone = self.store.close_idle(limit - TOUCH_EVERY)  # the store's last_seen lags by up to TOUCH_EVERY
        with self._lock:
            for row in gone:
                self._live.pop(row.id_hash, None)
            for key in [k for k, live in self._live.items() if live.session.last_seen <= limit]:
                del self._live[key]  # not in use here: the next request reads the store again
        return gone

    # --- requests ------------------------------------------------------------------------------

    def authorise(self, method: str, headers: Mapping[str, str], now: dt.datetime) -> dict[str, str]:
        """The request's headers as the API's router reads them: the session's bearer added for a
        live session cookie (when the request has no Authorization of its own). Raises CsrfRefused
        for a state-changing request whose CSRF header does not match its session."""
        out = dict(headers)
        if "authorization" in out:
            return out
        session = self.get(session_id_of(out), now, touch=False)  # `authenticate` records the use
        if session is None:
            return out
        if method not in SAFE_METHODS and not hmac.compare_digest(
                out.get(CSRF_HEADER, "").encode(), session.csrf.encode()):
            raise CsrfRefused("missing or wrong CSRF token")
        out["authorization"] = f"Bearer {BEARER_PREFIX}{session.id}"
        return out

    def authenticate(self, token: str, now: dt.datetime) -> UserView | None:
        """The user a bearer stands for: a session's (its use recorded), or an API token's."""
        if not token.startswith(BEARER_PREFIX):
            return self.users.authenticate(token, now)
        session = self.get(token[len(BEARER_PREFIX):], now)
        if session is None:
            return None
        user = self.users.authenticate_token_id(session.token_id, now)
        if user is None:  # token expired or revoked, user disabled: the session is over
            self.close(session.id)
        return user

    def set_cookie(self, session: Session) -> str:
        """The Set-Cookie value opening `session` in the browser (a session cookie: no Max-Age,
        the server ends it on inactivity)."""
        flags = "; Secure" if self.secure_cookie else ""
        return f"{COOKIE}={session.id}; Path=/; HttpOnly; SameSite=Strict{flags}"

    def clear_cookie(self) -> str:
        flags = "; Secure" if self.secure_cookie else ""
        return f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{flags}"


class NoSessionStore:
    """A server nobody signs in to (API only): no session is ever found."""

    def open(self, id_hash: str, token: str, username: str, csrf: str, now: dt.datetime) -> Any:
        raise LookupError("this server has no console sign-in")

    def find(self, id_hash: str) -> None:
        return None

    def touch(self, id_hash: str, now: dt.datetime) -> None:
        return None

    def close(self, id_hash: str) -> None:
        return None

    def close_idle(self, unused_since: dt.datetime) -> list[Any]:
        return []


def id_hash(session_id: str) -> str:
    """What the store keeps of a session id: its SHA-256, in hex."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def session_id_of(headers: Mapping[str, str]) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    try:
        jar = SimpleCookie(raw)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None
