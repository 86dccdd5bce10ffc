"""Secretaries' live states through the API: she logs in, pauses and resumes herself; a supervisor
sees the team and may pause, resume or log out anyone (e.g. a phone left ringing at lunch).

The states live in the secretary desk (the SecretaryDesk port, callrouter.controller.desk in the
daemon), on the reactor thread; the API's handlers run in a thread pool, so every call into the
desk goes through `in_reactor` (blockingCallFromThread in the daemon). Every change is audited,
and reaches the desk with who made it (her state history and published state carry it). A pause
must give one of the team's pause reasons (none: the first): another is refused with 422 and the
list.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

from callrouter.ports import SecretaryDesk, SecretaryStateError, UnknownPauseReason
from callrouter.web.http import ApiError, Field, parse_body
from callrouter.web.ports import AuditTrail
from callrouter.web.router import Context, Route, guarded

PAUSE_BODY = {"reason": Field(str, required=False, max_length=80)}

# Runs fn(*args) on the reactor thread and returns its result (or raises its exception).
InReactor = Callable[..., Any]


@dataclass(frozen=True)
class SecretaryApi:
    audit: AuditTrail
    desk: SecretaryDesk
    in_reactor: InReactor

    def team(self, ctx: Context):
        return {"secretaries": sorted(self.in_reactor(self.desk.views), key=lambda v: v["id"])}

    def me(self, ctx: Context):
        return self._view(self._mine(ctx))

    def current_call(self, ctx: Context):
        """The screen-pop of the call ringing her or that she is on (null when none): the same as
        the MQTT screen-pop, for consoles that poll."""
        who = self._mine(ctx)
        return {"call": self.in_reactor(self.desk.current_offer, who)}

    def login(self, ctx: Context):
        return self._change(ctx, self._mine(ctx), "login")

    def logout(self, ctx: Context):
        return self._change(ctx, self._mine(ctx), "logout")

    def pause(self, ctx: Context):
        return self._change(ctx, self._mine(ctx), "pause", self._reason(ctx))

    def resume(self, ctx: Context):
        return self._change(ctx, self._mine(ctx), "resume")

    def pause_other(self, ctx: Context):
        return self._change(ctx, self._known(ctx.params["secretary"]), "pause", self._reason(ctx))

    def resume_other(self, ctx: Context):
        return self._change(ctx, self._known(ctx.params["secretary"]), "resume")

    def logout_other(self, ctx: Context):
        return self._change(ctx, self._known(ctx.params["secretary"]), "logout")

    # --- helpers -------------------------------------------------------------------------------

    def _mine(self, ctx: Context) -> str:
        """The secretary the logged-in user is: her username must be in a queue."""
        return self._known(ctx.user.username, mine=True)

    def _known(self, who: str, mine: bool = False) -> str:
        if not self.in_reactor(self.desk.known, who):
            what = "you are not a secretary of any queue" if mine else f"no secretary or phone {who!r} in any queue"
            raise ApiError(404, "not_found", what)
        return who

    @staticmethod
    def _reason(ctx: Context) -> str | None:
        """The reason given (None: the desk takes the first of the team's)."""
        return parse_body(ctx.request, PAUSE_BODY).get("reason")

    def _view(self, who: str) -> dict:
        return self.in_reactor(self.desk.view, who)

    def _change(self, ctx: Context, who: str, action: str, *args: Any) -> dict:
        try:
            view = self.in_reactor(functools.partial(getattr(self.desk, action), by=ctx.actor.name), who, *args)
        except UnknownPauseReason as exc:
            listed = ", ".join(f"« {r} »" for r in exc.reasons)
            raise ApiError(422, "unknown_pause_reason", f"Motif de pause inconnu « {exc.reason} » : choisissez "
                           f"parmi {listed}.", reasons=list(exc.reasons)) from None
        except SecretaryStateError as exc:
            raise ApiError(409, "conflict", str(exc), reason=str(exc)) from None
        self.audit.record(ctx.actor, f"secretary.{action}", f"secretary:{view['id']}", ctx.now,
                          details={"reason": view["paused"]} if action == "pause" else None)
        return view


def secretary_routes(api: SecretaryApi | None) -> list[Route]:
    """Routes answer 503 when the server runs no secretary desk."""

    h = guarded(api, "no call controller runs on this server")

    read, manage = ("secretaries", "read"), ("secretaries", "manage")
    return [
        Route("GET", "/api/secretaries/states", h("team"), (read,)),
        Route("GET", "/api/secretaries/me", h("me")),
        Route("GET", "/api/secretaries/me/call", h("current_call")),
        Route("POST", "/api/secretaries/me/login", h("login")),
        Route("POST", "/api/secretaries/me/logout", h("logout")),
        Route("POST", "/api/secretaries/me/pause", h("pause"), body=PAUSE_BODY),
        Route("POST", "/api/secretaries/me/resume", h("resume")),
        Route("POST", "/api/secretaries/{secretary}/pause", h("pause_other"), (manage,), body=PAUSE_BODY),
        Route("POST", "/api/secretaries/{secretary}/resume", h("resume_other"), (manage,)),
        Route("POST", "/api/secretaries/{secretary}/logout", h("logout_other"), (manage,)),
    ]
