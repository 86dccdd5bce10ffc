"""Escalation routes: the acknowledgement link, the inbound SMS webhook, and the API.

Secretaries start a chain from the console with `POST /api/calls/{call_id}/escalate` (the call's
caller is the number to call back) or, without a call, `POST /api/escalations` (practice, tier and
callback number): the chain is the same as one the IVR starts, with who started it and her note.

The link's GET only shows a confirmation page whose button POSTs the acknowledgement: mail
scanners and messaging apps fetch links to preview them, and a GET that acknowledged would stop a
chain nobody has read. The webhook is public (gateways have no bearer token) and authenticated by
a shared secret in the `X-Webhook-Secret` header. An inbound SMS is read by the Acknowledger, the
same way as a reply arriving over SMPP (only an explicit yes acknowledges).
"""

from __future__ import annotations

import datetime as dt
import hmac
import html
import re
from dataclasses import dataclass
from typing import Callable

from callrouter.auth.permissions import practice_scope
from callrouter.domain.errors import UnknownCall
from callrouter.domain.escalation_views import EscalationQuery, EscalationView, UnknownEscalation
from callrouter.domain.model import Dialplan
from callrouter.web.http import (
    ApiError, Field, HttpResponse, int_between, iso_datetime, one_of, parse_body, parse_query, text,
)
from callrouter.web.ports import Acknowledgements, AuditTrail, CallRecords, EscalationRecords
from callrouter.web.router import Context, Route, check_practice, check_visible, filters, guarded

OUTCOMES = ("acknowledged", "exhausted", "cancelled")
LIST_QUERY = {"practice": text, "since": iso_datetime, "until": iso_datetime, "tier": text,
              "outcome": one_of(*OUTCOMES), "limit": int_between(1, 1000)}
EXPORT_QUERY = {**LIST_QUERY, "limit": int_between(1, 100000)}
REPORT_QUERY = {"practice": text, "since": iso_datetime, "until": iso_datetime}
INBOUND_SMS_BODY = {"from": Field(str, max_length=32), "text": Field(str, required=False, max_length=1600)}
DELIVERY_BODY = {"id": Field(str, max_length=200), "status": Field(str, max_length=32)}
NOTE_MAX = 280  # a few words for the practitioner, not a medical record
ESCALATE_CALL_BODY = {"tier": Field(str, max_length=64), "note": Field(str, required=False, max_length=NOTE_MAX),
                      "callback_number": Field(str, required=False, max_length=32)}
ESCALATE_BODY = {"practice": Field(str, max_length=64), "tier": Field(str, max_length=64),
                 "callback_number": Field(str, max_length=32),
                 "note": Field(str, required=False, max_length=NOTE_MAX)}
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_FRENCH = re.compile(r"^0[1-9][0-9]{8}$")

# Blocking (called from an API thread): start a chain in the engine, on the reactor thread, and
# return its id (None: it could not start). Arguments: call_id, dialplan, tier, caller,
# triggered_by, note. See callrouter.escalation.service.
StartChain = Callable[[str | None, Dialplan, str, str, str, str | None], "int | None"]

PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title></head>
<body style="font-family:sans-serif;max-width:30em;margin:2em auto;padding:0 1em">
<h1>{title}</h1><p>{text}</p>{form}</body></html>
"""


def page(status: int, title: str, body: str, form: str = "") -> HttpResponse:
    content = PAGE.format(title=html.escape(title), text=html.escape(body), form=form)
    return HttpResponse(status, content.encode(), "text/html; charset=utf-8",
                        {"Referrer-Policy": "no-referrer"})


@dataclass(frozen=True)
class EscalationApi:
    audit: AuditTrail
    repo: EscalationRecords
    acks: Acknowledgements
    inbound_sms_secret: str | None
    start_chain: StartChain | None = None  # None: chains cannot be started from the console
    dialplan_for: Callable[[str], Dialplan | None] | None = None
    calls: CallRecords | None = None

    # --- practitioners ---------------------------------------------------------------------------

    def ack_page(self, ctx: Context):
        token = ctx.params["token"]
        form = (f'<form method="post" action="/ack/{html.escape(token, quote=True)}">'
                '<button type="submit" style="font-size:1.5em;padding:.5em 1em">'
                "J'accuse réception</button></form>")
        return page(200, "Alerte du télésecrétariat",
                    "Confirmez que vous prenez en charge cette alerte : l'escalade s'arrêtera.", form)

    def ack_link(self, ctx: Context):
        result = self.acks.by_link(ctx.params["token"], ctx.now)
        if result.status == "invalid":
            return page(404, "Lien invalide", "Ce lien d'accusé de réception n'est pas valide.")
        if result.status == "already":
            return page(200, "Déjà pris en charge",
                        "Cette alerte a déjà été prise en compte (ou l'escalade est terminée).")
        return page(200, "Merci", "Accusé de réception enregistré : l'escalade est arrêtée. "
                    "Merci de rappeler le patient au plus vite.")

    def _check_webhook(self, ctx: Context) -> None:
        given = ctx.request.headers.get("x-webhook-secret", "")
        if not self.inbound_sms_secret or not hmac.compare_digest(given, self.inbound_sms_secret):
            raise ApiError(403, "forbidden", "bad or missing X-Webhook-Secret", reason="webhook secret")

    def delivery_report(self, ctx: Context):
        """The gateway's delivery report: `id` is its message id; only "delivered" changes a step."""
        self._check_webhook(ctx)
        body = parse_body(ctx.request, DELIVERY_BODY)
        updated = body["status"] == "delivered" and self.repo.mark_delivered(body["id"])
        return {"updated": bool(updated)}

    def inbound_sms(self, ctx: Context):
        self._check_webhook(ctx)
        body = parse_body(ctx.request, INBOUND_SMS_BODY)
        result = self.acks.by_sms(body["from"], body.get("text"), ctx.now, "webhook")
        return {"acknowledged": result.accepted,
                "escalation_id": result.escalation_ids[0] if len(result.escalation_ids) == 1 else None,
                "escalation_ids": list(result.escalation_ids), "understood": result.understood,
                "action": result.action}

    # --- API -------------------------------------------------------------------------------------

    def list(self, ctx: Context):
        q = parse_query(ctx.request, LIST_QUERY)
        views = self.repo.query(self._query(ctx, q, q.get("limit", 100)))
        self._audit(ctx, "escalations.read", "escalations", q, len(views))
        return {"escalations": [v.to_json() for v in views]}

    def get(self, ctx: Context):
        view = self._visible(ctx)
        self._audit(ctx, "escalations.read", f"escalation:{view.id}", {}, 1)
        return view.to_json()

    def acknowledge(self, ctx: Context):
        view = self._visible(ctx)
        result = self.acks.by_user(view.id, ctx.user.username, ctx.now)
        self.audit.record(ctx.actor, "escalation.ack", f"escalation:{view.id}", ctx.now,
                          details={"accepted": result.accepted})
        return {"accepted": result.accepted, "escalation": result.escalation.to_json()}

    def take(self, ctx: Context):
        """A supervisor takes an exhausted chain in hand: every wallboard stops blinking it (the
        store announces the change). 409 for a chain that is not exhausted or already taken."""
        view = self._visible(ctx)
        accepted, view = self.repo.take(view.id, ctx.user.username, ctx.now, ctx.actor)
        if not accepted:
            why = (f"déjà prise en charge par {view.taken_by}" if view.taken_by
                   else "l'escalade n'est pas épuisée : rien à prendre en charge")
            raise ApiError(409, "conflict", f"Escalade {view.reference} {why}.", reason=why)
        return {"taken": True, "escalation": view.to_json()}

    def escalate_call(self, ctx: Context):
        """Start a chain for a call; the number to call back is the caller's unless one is given."""
        body = parse_body(ctx.request, ESCALATE_CALL_BODY)
        if self.calls is None:
            raise ApiError(503, "unavailable", "call records are not available on this server")
        try:
            call = self.calls.get(ctx.params["call_id"])
        except UnknownCall:
            raise ApiError(404, "not_found", "no such call") from None
        check_visible(ctx, call.practice, "call")
        number = _phone(body["callback_number"]) if "callback_number" in body else call.caller
        if not number:
            raise ApiError(422, "refused", "the caller's number is unknown (hidden): give callback_number",
                           reason="no number to call back")
        return self._start(ctx, call.id, call.practice, body["tier"], number, body.get("note"))

    def escalate(self, ctx: Context):
        """Start a chain without a call (e.g. a patient's message read by the secretary)."""
        body = parse_body(ctx.request, ESCALATE_BODY)
        check_practice(ctx, body["practice"])
        return self._start(ctx, None, body["practice"], body["tier"], _phone(body["callback_number"]),
                           body.get("note"))

    def _start(self, ctx: Context, call_id: str | None, practice: str, tier: str, number: str,
               note: str | None):
        if self.start_chain is None or self.dialplan_for is None:
            raise ApiError(503, "unavailable", "escalations cannot be started on this server")
        dialplan = self.dialplan_for(practice)
        if dialplan is None:
            raise ApiError(404, "not_found", f"practice {practice} has no dialplan loaded")
        if tier not in dialplan.escalation:
            known = ", ".join(sorted(dialplan.escalation)) or "none"
            raise ApiError(422, "refused", f"practice {practice} has no escalation tier {tier!r} "
                           f"(tiers: {known})", reason="unknown tier")
        note = " ".join(note.split()) if note else None
        by = f"user:{ctx.user.username}"
        escalation_id = self.start_chain(call_id, dialplan, tier, number, by, note or None)
        if escalation_id is None:
            raise ApiError(503, "unavailable", "the escalation could not start; see the server log")
        self.audit.record(ctx.actor, "escalation.start", f"escalation:{escalation_id}", ctx.now,
                          details={"call_id": call_id, "practice": practice, "tier": tier,
                                   "note_chars": len(note or "")})
        return {"escalation": self.repo.get(escalation_id).to_json()}

    def export(self, ctx: Context):
        q = parse_query(ctx.request, EXPORT_QUERY)
        data, _ = self.repo.export_csv(self._query(ctx, q, q.get("limit", 10000)), ctx.actor, ctx.now)
        stamp = ctx.now.strftime("%Y%m%dT%H%M%SZ")
        return HttpResponse(200, data.encode(), "text/csv; charset=utf-8",
                            {"Content-Disposition": f'attachment; filename="escalations-{stamp}.csv"'})

    def report(self, ctx: Context):
        q = parse_query(ctx.request, REPORT_QUERY)
        if "practice" not in q:
            raise ApiError(400, "invalid_query", "parameter 'practice' is required")
        check_practice(ctx, q["practice"])
        until = q.get("until", ctx.now)
        since = q.get("since", until - dt.timedelta(days=7))
        return self.repo.weekly_report(q["practice"], since, until)

    # --- helpers ---------------------------------------------------------------------------------

    def _visible(self, ctx: Context) -> EscalationView:
        try:
            view = self.repo.get(int(ctx.params["escalation_id"]))
        except (UnknownEscalation, ValueError):
            raise ApiError(404, "not_found", "no such escalation") from None
        check_visible(ctx, view.practice, "escalation")
        return view

    def _query(self, ctx: Context, q: dict, limit: int) -> EscalationQuery:
        practices = practice_scope(ctx.user.role, ctx.user.attrs)
        if "practice" in q:
            check_practice(ctx, q["practice"])
            practices = frozenset({q["practice"]})
        return EscalationQuery(practices, q.get("since"), q.get("until"), q.get("tier"),
                               q.get("outcome"), limit)

    def _audit(self, ctx: Context, action: str, target: str, q: dict, count: int) -> None:
        self.audit.record(ctx.actor, action, target, ctx.now, details={"filters": filters(q), "records": count})


def escalation_routes(api: EscalationApi | None) -> list[Route]:
    """The routes, served even when escalation is off (then they answer 503)."""

    h = guarded(api, "escalation is not enabled on this server")

    esc_r, esc_w = ("escalations", "read"), ("escalations", "write")
    return [
        Route("GET", "/ack/{token}", h("ack_page"), authenticated=False),
        Route("POST", "/ack/{token}", h("ack_link"), authenticated=False),
        Route("POST", "/api/escalations/inbound-sms", h("inbound_sms"), authenticated=False,
              body=INBOUND_SMS_BODY),
        Route("POST", "/api/escalations/delivery-report", h("delivery_report"), authenticated=False,
              body=DELIVERY_BODY),
        Route("GET", "/api/escalations", h("list"), (esc_r,), query=LIST_QUERY),
        Route("GET", "/api/escalations/{escalation_id:int}", h("get"), (esc_r,)),
        Route("POST", "/api/escalations/{escalation_id:int}/ack", h("acknowledge"), (esc_w,)),
        Route("POST", "/api/escalations/{escalation_id:int}/take", h("take"), (esc_w,)),
        Route("POST", "/api/escalations", h("escalate"), (esc_w,), body=ESCALATE_BODY, status=201),
        Route("POST", "/api/calls/{call_id}/escalate", h("escalate_call"), (esc_w,),
              body=ESCALATE_CALL_BODY, status=201),
        Route("GET", "/api/exports/escalations", h("export"), (esc_r, ("exports", "run")),
              query=EXPORT_QUERY),
        Route("GET", "/api/reports/escalations", h("report"), (esc_r,), query=REPORT_QUERY),
    ]


def _phone(raw: str) -> str:
    """A number to call back, as E.164: +33612345678, or a French 06 12 34 56 78."""
    compact = re.sub(r"[\s.\-()]", "", raw)
    if _FRENCH.match(compact):
        return "+33" + compact[1:]
    if _E164.match(compact):
        return compact
    raise ApiError(400, "invalid_body", "field 'callback_number' must be a phone number such as "
                   "+33612345678 or 06 12 34 56 78")
