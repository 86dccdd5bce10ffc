"""The admin API's handlers and route table: parse, call the store (through callrouter.web.ports),
serialise. Reads of patient data are traced by the store in the reading transaction; changes are
audited with them."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Callable, TYPE_CHECKING, Iterator

from callrouter.auth.permissions import (
    MODULES, ROLES, describe_roles, practice_scope,
)
from callrouter.domain.errors import AuthFailed, UnknownCall, UnknownUser, UserError, UserExists
from callrouter.ports import OUTCOMES, CallQuery, DialplanStatusSource
from callrouter.web.http import (
    ApiError, Field, HttpResponse, Live, int_between, iso_datetime, one_of, parse_body, parse_query, text,
)
from callrouter.web.escalations import escalation_routes
from callrouter.web.ports import AuditTrail, CallRecords, UserDirectory
from callrouter.web.serialise import CSV_COLUMNS, csv_rows, serialise_call, serialise_entry
from callrouter.web.secretaries import SecretaryApi, secretary_routes
from callrouter.web.tasks import TaskApi, task_routes
from callrouter.web.transfers import CallTransfers, TransferApi, transfer_routes
from callrouter.web.router import Context, Route, Router, check_practice, filters

if TYPE_CHECKING:
    from callrouter.web.escalations import EscalationApi

LOGIN_BODY = {"username": Field(str, max_length=64), "password": Field(str, max_length=1024),
              "totp": Field(str, max_length=10)}
NEW_USER_BODY = {
    "username": Field(str, max_length=64), "display_name": Field(str),
    "role": Field(str, choices=ROLES), "password": Field(str, max_length=1024),
    "external": Field(bool, required=False),
    "practices": Field(list, required=False, items=str, max_length=500),
    "sip_password": Field(str, required=False, max_length=1024),
}
GRANT_BODY = {"module": Field(str, choices=tuple(MODULES)), "action": Field(str, max_length=16)}
ROLE_BODY = {"role": Field(str, choices=ROLES), "external": Field(bool, required=False)}
PRACTICES_BODY = {"practices": Field(list, items=str, max_length=500)}
CALLS_QUERY = {"practice": text, "since": iso_datetime, "until": iso_datetime,
               "outcome": one_of(*OUTCOMES), "limit": int_between(1, 1000)}
EXPORT_QUERY = {**CALLS_QUERY, "limit": int_between(1, 100000)}
AUDIT_QUERY = {"since": iso_datetime, "until": iso_datetime, "actor": text, "action": text,
               "limit": int_between(1, 1000)}


@dataclass(frozen=True)
class Api:
    users: UserDirectory
    calls: CallRecords
    audit: AuditTrail
    dialplans: DialplanStatusSource
    token_ttl: "Live[dt.timedelta]"  # given as a timedelta; a Live the settings reload follows (the next login's)
    escalations: "EscalationApi | None" = None  # None: escalation routes answer 503
    # practice id -> its card (diary context: platform, consultation types, reserved slots...), or None
    practice_cards: Callable[[str], dict | None] | None = None
    secretary_states: SecretaryApi | None = None  # None: the live secretary routes answer 503
    tasks: TaskApi | None = None  # None: the callback task routes answer 503
    # The call controller's transfers (its secretary states' thread hop is used); None: the routes answer 503.
    call_transfers: CallTransfers | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.token_ttl, Live):
            object.__setattr__(self, "token_ttl", Live(self.token_ttl))

    # --- session -------------------------------------------------------------------------------

    def login(self, ctx: Context):
        body = parse_body(ctx.request, LOGIN_BODY)
        try:
            token, expires = self.users.login(body["username"], body["password"], body["totp"],
                                              ctx.now, ctx.request.source, self.token_ttl())
        except AuthFailed as exc:
            raise ApiError(401, "unauthorized", str(exc)) from None
        return {"token": token, "token_type": "Bearer", "expires_at": expires.isoformat()}

    def logout(self, ctx: Context):
        self.users.logout(ctx.token)
        return {"logged_out": True}

    def me(self, ctx: Context):
        return ctx.user.to_json()

    # --- users ---------------------------------------------------------------------------------

    def roles(self, ctx: Context):
        return {"roles": describe_roles(),
                "modules": {m: list(actions) for m, actions in MODULES.items()}}

    def list_users(self, ctx: Context):
        return {"users": [u.to_json() for u in self.users.list()]}

    def get_user(self, ctx: Context):
        with _user_errors():
            return self.users.get(ctx.params["username"]).to_json()

    def create_user(self, ctx: Context):
        body = parse_body(ctx.request, NEW_USER_BODY)
        with _user_errors():
            new = self.users.add(ctx.actor, body["username"], body["display_name"], body["role"],
                                 body["password"], ctx.now, external=body.get("external", False),
                                 practices=tuple(body.get("practices", ())),
                                 sip_password=body.get("sip_password"))
        return {"user": new.user.to_json(), "totp_secret": new.totp_secret,
                "totp_uri": new.totp_uri}

    def disable_user(self, ctx: Context):
        with _user_errors():
            return self.users.disable(ctx.actor, ctx.params["username"], ctx.now).to_json()

    def grant(self, ctx: Context):
        body = parse_body(ctx.request, GRANT_BODY)
        with _user_errors():
            return self.users.grant(ctx.actor, ctx.params["username"], body["module"],
                                    body["action"], ctx.now).to_json()

    def set_role(self, ctx: Context):
        body = parse_body(ctx.request, ROLE_BODY)
        with _user_errors():
            return self.users.set_role(ctx.actor, ctx.params["username"], body["role"],
                                       body.get("external", False), ctx.now).to_json()

    def revoke(self, ctx: Context):
        with _user_errors():
            return self.users.revoke(ctx.actor, ctx.params["username"], ctx.params["module"],
                                     ctx.params["action"], ctx.now).to_json()

    def set_practices(self, ctx: Context):
        body = parse_body(ctx.request, PRACTICES_BODY)
        with _user_errors():
            return self.users.set_practices(ctx.actor, ctx.params["username"],
                                            tuple(body["practices"]), ctx.now).to_json()

    def secretaries(self, ctx: Context):
        return {"secretaries": [
            {"username": u.username, "display_name": u.display_name, "external": u.external,
             "enabled": u.enabled, "practices": list(u.practices)}
            for u in self.users.list(role="secretary")]}

    # --- call records --------------------------------------------------------------------------

    def list_calls(self, ctx: Context):
        q = parse_query(ctx.request, CALLS_QUERY)
        query = self._call_query(ctx, q, q.get("limit", 100))
        return {"calls": [serialise_call(c) for c in self.calls.read(query, ctx.actor, ctx.now, filters(q))]}

    def get_call(self, ctx: Context):
        """A call of a practice she does not cover is "no such call", as a missing one."""
        scope = practice_scope(ctx.user.role, ctx.user.attrs)
        try:
            call = self.calls.read_one(ctx.params["call_id"], scope, ctx.actor, ctx.now)
        except UnknownCall:
            raise ApiError(404, "not_found", "no such call") from None
        return serialise_call(call)

    def export_calls(self, ctx: Context):
        q = parse_query(ctx.request, EXPORT_QUERY)
        query = self._call_query(ctx, q, q.get("limit", 10000))
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        # The export is traced as it is read, before anything is sent.
        writer.writerows(csv_rows(self.calls.export(query, ctx.actor, ctx.now, filters(q))))
        stamp = ctx.now.strftime("%Y%m%dT%H%M%SZ")
        return HttpResponse(200, out.getvalue().encode(), "text/csv; charset=utf-8",
                            {"Content-Disposition": f'attachment; filename="calls-{stamp}.csv"'})

    def _call_query(self, ctx: Context, q: dict, limit: int) -> CallQuery:
        scope = practice_scope(ctx.user.role, ctx.user.attrs)
        practices = scope
        if "practice" in q:
            check_practice(ctx, q["practice"])
            practices = frozenset({q["practice"]})
        return CallQuery(practices=practices, since=q.get("since"), until=q.get("until"),
                         outcome=q.get("outcome"), limit=limit)

    # --- audit and dialplans -------------------------------------------------------------------

    def audit_entries(self, ctx: Context):
        q = parse_query(ctx.request, AUDIT_QUERY)
        entries = self.audit.read(ctx.actor, ctx.now, filters(q), since=q.get("since"), until=q.get("until"),
                                  actor=q.get("actor"), action=q.get("action"), limit=q.get("limit", 100))
        return {"entries": [serialise_entry(e) for e in entries]}

    def audit_verify(self, ctx: Context):
        r = self.audit.verify()
        return {"ok": r.ok, "checked": r.checked, "error": r.error, "bad_seq": r.bad_seq,
                "head_seq": r.head_seq, "head_hash": r.head_hash, "anchored": r.anchored}

    def practice_card(self, ctx: Context):
        """The diary context a secretary needs on screen for a practice she covers."""
        practice = ctx.params["practice"]
        scope = practice_scope(ctx.user.role, ctx.user.attrs)
        card = self.practice_cards(practice) if self.practice_cards else None
        if card is None or (scope is not None and practice not in scope):
            raise ApiError(404, "not_found", "no such practice")
        return card

    def dialplan_status(self, ctx: Context):
        statuses = self.dialplans.dialplan_status()
        return {"dialplans": [
            {"practice": s.practice, "version": s.version, "source": s.source,
             "loaded_at": None if s.loaded_at is None else s.loaded_at.isoformat(),
             "last_error": s.last_error}
            for _, s in sorted(statuses.items())]}

    # --- routes --------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        users_r, users_w = ("users", "read"), ("users", "write")
        return [
            Route("POST", "/api/login", self.login, authenticated=False, body=LOGIN_BODY),
            Route("POST", "/api/logout", self.logout),
            Route("GET", "/api/me", self.me),
            Route("GET", "/api/roles", self.roles, (users_r,)),
            Route("GET", "/api/users", self.list_users, (users_r,)),
            Route("POST", "/api/users", self.create_user, (users_w,), body=NEW_USER_BODY,
                  status=201),
            Route("GET", "/api/users/{username}", self.get_user, (users_r,)),
            Route("PUT", "/api/users/{username}/role", self.set_role, (users_w,), body=ROLE_BODY),
            Route("POST", "/api/users/{username}/disable", self.disable_user, (users_w,)),
            Route("POST", "/api/users/{username}/grants", self.grant, (users_w,), body=GRANT_BODY),
            Route("DELETE", "/api/users/{username}/grants/{module}/{action}", self.revoke,
                  (users_w,)),
            Route("PUT", "/api/users/{username}/practices", self.set_practices, (users_w,),
                  body=PRACTICES_BODY),
            Route("GET", "/api/secretaries", self.secretaries, (users_r,)),
            *secretary_routes(self.secretary_states),
            Route("GET", "/api/calls", self.list_calls, (("calls", "read"),), query=CALLS_QUERY),
            Route("GET", "/api/calls/{call_id}", self.get_call, (("calls", "read"),)),
            Route("GET", "/api/exports/calls", self.export_calls,
                  (("calls", "read"), ("exports", "run")), query=EXPORT_QUERY),
            Route("GET", "/api/audit", self.audit_entries, (("audit", "read"),),
                  query=AUDIT_QUERY),
            Route("GET", "/api/audit/verify", self.audit_verify, (("audit", "read"),)),
            Route("GET", "/api/dialplans/status", self.dialplan_status, (("dialplans", "read"),)),
            Route("GET", "/api/practices/{practice}/card", self.practice_card, (("calls", "read"),)),
            *escalation_routes(self.escalations),
            *task_routes(self.tasks),
            *transfer_routes(self._transfers()),
        ]

    def _transfers(self) -> TransferApi | None:
        if self.call_transfers is None or self.secretary_states is None:
            return None
        return TransferApi(self.audit, self.call_transfers, self.secretary_states.in_reactor, self.users)

    def router(self) -> Router:
        return Router(self.routes(), self.users.authenticate)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Map the store's user errors to HTTP answers."""
    try:
        yield
    except UnknownUser as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except UserExists as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except UserError as exc:
        raise ApiError(422, "refused", str(exc), reason=str(exc)) from None
