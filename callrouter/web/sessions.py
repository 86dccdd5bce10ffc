"""The console's browser sessions: a cookie standing for an API bearer token, kept server-side.

Signing in to the console (callrouter.web.console) is the API's login (password + TOTP) whose
bearer token never reaches the page: it stays here, behind a random session id sent as a cookie
that is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it) and Secure
when the console is served over HTTPS. A request to /api/* carrying the cookie and no
Authorization header is then the same request with that token: same permissions, same practice
scope as the token API.

- Inactivity: a session unused for `inactivity` is ended (its token revoked by the caller); the
  event stream does not count as use, the secretary's own requests do.
- CSRF: each session has a random token the page reads from GET /api/session and sends back in the
  `X-CSRF-Token` header; a state-changing request (anything but GET/HEAD/OPTIONS) with the cookie
  and without the session's token is refused (403) before any handler runs.

Sessions live in memory: a restart of the service signs every console out. Thread-safe: the
handlers run in the API's thread pool, the cookie is read on the reactor thread.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import threading
from dataclasses import dataclass, replace
from http.cookies import CookieError, SimpleCookie
from typing import Mapping

COOKIE = "callrouter_console"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(Exception):
    """A state-changing request with a session cookie but without the session's CSRF token."""


@dataclass(frozen=True)
class Session:
    id: str
    username: str
    token: str  # the API bearer token this session stands for
    csrf: str
    last_seen: dt.datetime


class ConsoleSessions:
    def __init__(self, inactivity: dt.timedelta, secure_cookie: bool = False) -> None:
        self.inactivity = inactivity
        self.secure_cookie = secure_cookie
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, username: str, token: str, now: dt.datetime) -> Session:
        session = Session(secrets.token_urlsafe(32), username, token, secrets.token_urlsafe(32), now)
        with self._lock:
            self._sweep(now)
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None, now: dt.datetime, touch: bool = True) -> Session | None:
        """The live session with this id (its inactivity clock restarted when `touch`), else None."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.last_seen >= self.inactivity:
                del self._sessions[session_id]
                return None
            if touch:
                session = self._sessions[session_id] = replace(session, last_seen=max(now, session.last_seen))
            return session

    def close(self, session_id: str) -> Session | None:
        with self._lock:
            return self._sessions.pop(session_id, None)

    def expired(self, now: dt.datetime) -> list[Session]:
        """Removes and returns the sessions past their inactivity limit (their tokens to revoke)."""
        with self._lock:
            return self._sweep(now)

    def _sweep(self, now: dt.datetime) -> list[Session]:
        gone = [s for s in self._sessions.values() if now - s.last_seen >= self.inactivity]
        for s in gone:
            del self._sessions[s.id]
        return gone

    # --- requests ------------------------------------------------------------------------------

    def authorise(self, method: str, headers: Mapping[str, str], now: dt.datetime) -> dict[str, str]:
        """The request's headers as the API's router reads them: a bearer token added for a live
        session cookie (when the request has no Authorization of its own). Raises CsrfRefused for
        a state-changing request whose CSRF header does not match its session."""
        out = dict(headers)
        if "authorization" in out:
            return out
        session = self.get(session_id_of(out), now)
        if session is None:
            return out
        if method not in SAFE_METHODS and not hmac.compare_digest(
                out.get(CSRF_HEADER, "").encode(), session.csrf.encode()):
            raise CsrfRefused("missing or wrong CSRF token")
        out["authorization"] = f"Bearer {session.token}"
        return out

    def set_cookie(self, session: Session) -> str:
        """The Set-Cookie value opening `session` in the browser (a session cookie: no Max-Age,
        the server ends it on inactivity)."""
        flags = "; Secure" if self.secure_cookie else ""
        return f"{COOKIE}={session.id}; Path=/; HttpOnly; SameSite=Strict{flags}"

    def clear_cookie(self) -> str:
        flags = "; Secure" if self.secure_cookie else ""
        return f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{flags}"


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
