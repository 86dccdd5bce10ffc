"""The console's sign-in and session routes (the page itself is served by callrouter.web.pages).

- POST /api/session: identifiant, mot de passe, code à 6 chiffres. The API's login (same lockout,
  same audit); its bearer token stays server-side behind the session cookie, the session in the
  database (callrouter.web.sessions): a restart of the service signs nobody out. A user whose
  second factor is not enrolled yet (no code ever accepted) and whose password is right gets 409
  `totp_enrolment` with the QR code of her TOTP secret (an SVG data URI, rendered here with segno)
  and the secret for manual entry; she signs in with her first code.
- GET /api/session: who is signed in, the session's CSRF token, the console's settings (the team's pause
  reasons, inactivity limit).
- DELETE /api/session: sign out (the session closed and its token revoked, the cookie cleared).

Messages are French: the page shows them as they come.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import segno

from callrouter.config import ConsoleSettings
from callrouter.domain.errors import AuthFailed
from callrouter.web.http import ApiError, Field, HttpResponse, current, json_response, parse_body
from callrouter.web.router import Context, Route
from callrouter.web.sessions import BEARER_PREFIX, ConsoleSessions, session_id_of

SIGN_IN_BODY = {"username": Field(str, max_length=64), "password": Field(str, max_length=1024),
                "totp": Field(str, required=False, max_length=10)}
WRONG_CREDENTIALS = "Identifiant, mot de passe ou code incorrect."
WRONG_CODE = "Code incorrect."
ENROL = ("Première connexion : scannez ce QR code avec votre application d'authentification "
         "(FreeOTP, Google Authenticator…), puis saisissez le code à 6 chiffres affiché.")


class ConsoleUsers(Protocol):
    """What the console's sign-in needs of the users (callrouter.store.users.UserRepository)."""

    def login(self, username: str, password: str, totp_code: str, now: dt.datetime, source: str,
              ttl: dt.timedelta) -> tuple[str, dt.datetime]: ...
    def totp_enrolment(self, username: str, password: str, now: dt.datetime) -> str | None: ...
    def logout(self, token: str) -> None: ...


def qr_data_uri(uri: str) -> str:
    """The QR code of `uri` as an SVG data URI (an <img> source: no inline markup, CSP-safe)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2, dark="#14213d")


def secret_of(uri: str) -> str:
    query = uri.partition("?")[2]
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == "secret":
            return value
    return ""


@dataclass(frozen=True)
class ConsoleApi:
    users: ConsoleUsers
    sessions: ConsoleSessions
    settings: ConsoleSettings
    token_ttl: dt.timedelta | Callable[[], dt.timedelta]  # a Live: the reload's next sign-in
    # The team's pause reasons (callrouter.store.team, blocking); None: the settings' list.
    pause_reasons: Callable[[], Sequence[str]] | None = None

    def sign_in(self, ctx: Context):
        body = parse_body(ctx.request, SIGN_IN_BODY)
        username, password = body["username"].strip().lower(), body["password"]
        code = "".join(body.get("totp", "").split())
        try:
            token, _ = self.users.login(username, password, code, ctx.now, ctx.request.source, current(self.token_ttl))
        except AuthFailed:
            uri = self.users.totp_enrolment(username, password, ctx.now)
            if uri is None:
                raise ApiError(401, "unauthorized", WRONG_CREDENTIALS) from None
            message = f"{WRONG_CODE} {ENROL}" if code else ENROL
            raise ApiError(409, "totp_enrolment", message, qr=qr_data_uri(uri), secret=secret_of(uri)) from None
        session = self.sessions.open(username, token, ctx.now)
        response = json_response(self._describe(username, session.csrf))
        return HttpResponse(response.status, response.body, headers={"Set-Cookie": self.sessions.set_cookie(session)})

    def current(self, ctx: Context):
        session = self.sessions.get(session_id_of(ctx.request.headers), ctx.now)
        return {**self._describe(ctx.user.username, session.csrf if session else None),
                "display_name": ctx.user.display_name, "role": ctx.user.role,
                "practices": list(ctx.user.practices)}

    def sign_out(self, ctx: Context):
        session_id = session_id_of(ctx.request.headers)
        if session_id:
            self.sessions.close(session_id)  # its token revoked with it
        if not ctx.token.startswith(BEARER_PREFIX):
            self.users.logout(ctx.token)
        response = json_response({"signed_out": True})
        return HttpResponse(response.status, response.body, headers={"Set-Cookie": self.sessions.clear_cookie()})

    def _describe(self, username: str, csrf: str | None) -> dict:
        return {"username": username, "csrf_token": csrf,
                "inactivity_minutes": self._inactivity_minutes(),
                "pause_reasons": list(self.pause_reasons() if self.pause_reasons else self.settings.pause_reasons)}

    def _inactivity_minutes(self) -> int:
        """The sessions' limit as the last settings reload left it."""
        if self.sessions is None:
            return self.settings.inactivity_minutes
        return self.sessions.inactivity // dt.timedelta(minutes=1)

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/api/session", self.sign_in, authenticated=False, body=SIGN_IN_BODY),
            Route("GET", "/api/session", self.current),
            Route("DELETE", "/api/session", self.sign_out),
        ]
