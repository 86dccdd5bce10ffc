"""A call handed to a colleague through the API (docs/acd.md, "Transfer to a colleague").

- GET /api/calls/{call_id}/colleagues: who could take the call over now (logged in, softphone
  registered, not paused, free, covering the call's practice), with their names, for the console's list.
- POST /api/calls/{call_id}/transfer {"to": "<username>"}: the transfer starts (202); its outcome
  comes as the call's events (`transferred`, or `transfer_failed` with the cause: docs/events.md).

A secretary may transfer only the call she is on; a user who manages the team (a supervisor) any.
The calls live in the call controller (callrouter.controller.transfer) on the reactor thread: every
call into it goes through `in_reactor`. Every transfer asked is audited. Refusals are French:
409 for a state that may change (colleague busy, call no longer in progress), 422 for a request
that never can be made (a colleague not covering the practice, herself, nobody by that name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from callrouter.auth.permissions import allowed
from callrouter.domain.errors import UnknownCall, UnknownUser
from callrouter.domain.transfer import NotYourCall, TransferRefused
from callrouter.web.http import ApiError, Field, parse_body
from callrouter.web.ports import AuditTrail
from callrouter.web.router import Context, Route, guarded

TRANSFER_BODY = {"to": Field(str, max_length=200)}
GONE = "Cet appel est terminé ou inconnu."
NOT_YOURS = "Vous n'êtes pas en ligne avec ce patient : seul sa secrétaire ou un superviseur peut le transférer."


class CallTransfers(Protocol):
    """The call controller's transfers (callrouter.controller.transfer.Transfers); on the reactor
    thread. UnknownCall for a call not in progress here, NotYourCall for a requester not on it,
    TransferRefused (with its `refusal`) for a transfer that cannot be made."""

    def colleagues(self, call_id: str, requester: str | None = None) -> list[dict[str, Any]]: ...
    def transfer(self, call_id: str, to: str, by: str, requester: str | None = None) -> dict[str, Any]: ...


class Names(Protocol):
    def get(self, username: str) -> Any: ...


@dataclass(frozen=True)
class TransferApi:
    audit: AuditTrail
    transfers: CallTransfers
    in_reactor: Callable[..., Any]
    users: Names | None = None  # display names for the console's list (None: logins only)

    def colleagues(self, ctx: Context):
        views = self._asked(ctx, "colleagues", ctx.params["call_id"], self._requester(ctx))
        return {"colleagues": [{**v, "display_name": self._name(v)} for v in views]}

    def transfer(self, ctx: Context):
        to = parse_body(ctx.request, TRANSFER_BODY)["to"].strip()
        call_id = ctx.params["call_id"]
        view = self._asked(ctx, "transfer", call_id, to, ctx.actor.name, self._requester(ctx))
        self.audit.record(ctx.actor, "call.transfer", f"call:{call_id}", ctx.now,
                          details={"from": view["from"], "to": view["to"]})
        return {**view, "to_name": self._name({"id": view["to"], "username": view["to"]})}

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _requester(ctx: Context) -> str | None:
        """None for a user who manages the team (any call); else herself (her own call only)."""
        may_manage, _ = allowed(ctx.user.role, "secretaries", "manage", ctx.user.attrs)
        return None if may_manage else ctx.user.username

    def _asked(self, ctx: Context, method: str, *args: Any) -> Any:
        try:
            return self.in_reactor(getattr(self.transfers, method), *args)
        except UnknownCall:
            raise ApiError(404, "not_found", GONE) from None
        except NotYourCall:
            raise ApiError(403, "forbidden", NOT_YOURS, reason=NOT_YOURS) from None
        except TransferRefused as exc:
            r = exc.refusal
            raise ApiError(r.status, r.code, r.message, reason=r.message) from None

    def _name(self, view: dict) -> str:
        username = view.get("username")
        if self.users is not None and username:
            try:
                return self.users.get(username).display_name
            except UnknownUser:
                pass
        return str(view.get("id"))


def transfer_routes(api: TransferApi | None) -> list[Route]:
    """Routes answer 503 when the server runs no call controller."""
    h = guarded(api, "no call controller runs on this server")
    return [
        Route("GET", "/api/calls/{call_id}/colleagues", h("colleagues"), (("calls", "read"),)),
        Route("POST", "/api/calls/{call_id}/transfer", h("transfer"), (("calls", "write"),), body=TRANSFER_BODY,
              status=202),
    ]
