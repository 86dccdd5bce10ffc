"""Who is on call now for a practice, and whom each escalation tier would reach if it started now:
what the secretary's call card shows beside the button that starts a tier.

`GET /api/practices/{practice}/on-call` (calls:read). Scoped like the practice card: a practice
the user does not cover is "no such practice" (404), as one without a dialplan. The answer names
practitioners, never their phone numbers or e-mail addresses: the escalation engine has those.

Each tier's steps are resolved with the same function the escalation engine uses
(callrouter.domain.escalation.resolve), at the request's time, so the card shows whom a chain
started now would reach first. Labels are French, for the screen; codes stay English.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable

from callrouter.auth.permissions import practice_scope
from callrouter.domain import calendar, oncall
from callrouter.domain.escalation import Skip, resolve
from callrouter.domain.model import Dialplan
from callrouter.domain.times import Period
from callrouter.web.http import ApiError
from callrouter.web.router import Context, Route, guarded

CHANNELS = {"sms": "SMS", "call": "Appel", "email": "E-mail"}
TARGETS = {"on_call": "Médecin de garde", "backup": "Remplaçant"}
RULES = {
    oncall.EXCEPTION: "remplacement ponctuel", oncall.FEED: "planning de garde partagé",
    oncall.WEEKLY: "planning hebdomadaire", oncall.HOLIDAY: "jour férié",
    oncall.ENDED: "planning terminé", oncall.NONE: "personne de garde à cette heure",
}
LOOKAHEAD = dt.timedelta(days=2)  # how far "de garde jusqu'à" looks for the end of the current shift


def skip_label(reason: str) -> str:
    """The escalation's reason for not sending a step, in French for the secretary."""
    if reason == "no on-call rota":
        return "pas de planning de garde"
    if reason == "nobody on call":
        return "personne de garde à cette heure"
    if reason == "no backup declared":
        return "aucun remplaçant déclaré"
    if reason.startswith("declined"):
        return "a décliné"
    if reason.startswith("unknown practitioner"):
        return "praticien inconnu du cabinet"
    if reason.endswith(" has no phone"):
        return "pas de numéro de portable renseigné"
    if reason.endswith(" has no email"):
        return "pas d'adresse e-mail renseignée"
    return "étape impossible"


@dataclass(frozen=True)
class OnCallApi:
    dialplan_for: Callable[[str], Dialplan | None]
    tier_label: Callable[[str], str] = str  # a tier's name as the secretary reads it

    def on_call(self, ctx: Context):
        practice = ctx.params["practice"]
        scope = practice_scope(ctx.user.role, ctx.user.attrs)
        dialplan = self.dialplan_for(practice) if scope is None or practice in scope else None
        if dialplan is None:
            raise ApiError(404, "not_found", "no such practice")
        return describe(dialplan, ctx.now, self.tier_label)


def describe(dialplan: Dialplan, now: dt.datetime, tier_label: Callable[[str], str] = str) -> dict[str, Any]:
    """The practice's on-call now and its tiers' first contacts, names only (pure)."""
    rota = dialplan.on_call
    return {
        "practice": dialplan.practice,
        "practice_name": dialplan.name,
        "at": now.isoformat(timespec="seconds"),
        "rota": rota is not None,
        "on_call": _now_on_call(dialplan, now) if rota is not None else None,
        "backup": _person(dialplan, rota.backup) if rota is not None and rota.backup else None,
        "tiers": [_tier(dialplan, name, tier_label(name), now) for name in dialplan.escalation],
    }


def _now_on_call(dialplan: Dialplan, now: dt.datetime) -> dict[str, Any]:
    rota = dialplan.on_call
    zone = calendar.zone(dialplan.calendar.timezone)
    local = calendar.local_time(dialplan.calendar.timezone, now)
    got = oncall.on_call(rota, local)
    until = None  # when someone else takes over (within LOOKAHEAD)
    for segment in oncall.who_when(rota, Period(local, local + LOOKAHEAD)):
        if segment.who != got.who:
            until = segment.period.start
            break
    person = _person(dialplan, got.who) if got.who else None
    return {**(person or {"id": None, "name": None, "role": None}), "rule": got.rule,
            "rule_label": RULES.get(got.rule, got.rule),
            "until": until.replace(tzinfo=zone).isoformat(timespec="minutes") if until else None}


def _tier(dialplan: Dialplan, name: str, label: str, now: dt.datetime) -> dict[str, Any]:
    tier = dialplan.escalation[name]
    steps = []
    for i, step in enumerate(tier.steps):
        got = resolve(step, 0, i, dialplan, now)
        person = dialplan.practitioners.get(got.practitioner) if got.practitioner else None
        steps.append({
            "step": i + 1, "channel": step.channel, "channel_label": CHANNELS.get(step.channel, step.channel),
            "target": step.target, "target_label": TARGETS.get(step.target, "Praticien désigné"),
            "name": person.name if person else None,
            "reachable": not isinstance(got, Skip),
            "note": skip_label(got.reason) if isinstance(got, Skip) else None,
            "wait_s": step.wait_s,
        })
    names = list(dict.fromkeys(s["name"] for s in steps if s["name"] and s["reachable"]))
    return {"tier": name, "label": label, "announce": tier.announce is not None, "names": names, "steps": steps}


def _person(dialplan: Dialplan, who: str) -> dict[str, Any]:
    p = dialplan.practitioners.get(who)
    return {"id": who, "name": p.name if p else who, "role": p.role if p else None}


def oncall_routes(api: OnCallApi | None) -> list[Route]:
    """The route, served even when the server runs without dialplans (then it answers 503)."""
    h = guarded(api, "the on-call rota is not available on this server")
    return [Route("GET", "/api/practices/{practice}/on-call", h("on_call"), (("calls", "read"),))]
