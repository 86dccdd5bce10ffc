"""The practice card and the screen-pop: what a secretary's screen shows, built from a Dialplan.

Pure: no I/O, no clock (times are arguments). The dicts are JSON-serialisable; keys are English
codes for programs, `*_label` values are French text for the secretary. The practice card never
carries a phone number (practitioners' phones and e-mails stay in the dialplan); the screen-pop
carries the caller's number because the secretary may have to call back, and nothing else does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

from callrouter.domain.ivr import TIMEOUT
from callrouter.domain.model import DIARY_PLATFORMS, ConsultationType, Dialplan, ReservedSlot, Site, TimeRange

SCHEMA_VERSION = 1

DAY_NAMES = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
PLATFORMS = DIARY_PLATFORMS
PATIENTS = {"all": "Tous patients", "new": "Nouveaux patients uniquement", "known": "Patients connus uniquement"}
BOOKING = {"direct": "Rendez-vous à donner directement", "filter": "À filtrer : demander l'accord du praticien"}
TIERS = {"vital": "Urgence vitale", "urgent": "Urgent"}


def practice_card(dialplan: Dialplan) -> dict[str, Any]:
    """Everything a secretary needs to answer for a practice, without a single phone number."""
    diary = dialplan.diary
    return {
        "v": SCHEMA_VERSION,
        "practice": dialplan.practice,
        "name": dialplan.name,
        "dialplan_version": dialplan.version,
        "sites": [_site(s) for s in dialplan.sites.values()],
        "practitioners": [{"id": p.id, "name": p.name, "role": p.role,
                           "sites": [_site_name(dialplan, s) for s in p.sites]}
                          for p in dialplan.practitioners.values()],
        "queues": [{"id": q.name, "label": q.label} for q in dialplan.queues.values()],
        "platform": diary.platform if diary else None,
        "platform_label": platform_label(diary.platform) if diary else None,
        "booking_link": diary.booking_link if diary else None,
        "consultation_types": [_consultation(dialplan, c) for c in (diary.consultation_types if diary else ())],
        "reserved_slots": [_reserved(dialplan, r) for r in (diary.reserved_slots if diary else ())],
        "instructions": diary.instructions if diary else "",
    }


def screen_pop(dialplan: Dialplan, *, call_id: str, at: dt.datetime, secretary: str,
               caller: str | None, calls_today: int, site: str | None = None, queue: str | None = None,
               reason: str | None = None, tier: str | None = None,
               ivr_answers: Sequence[tuple[str, str]] = (), console_url: str | None = None,
               queued_at: dt.datetime | None = None) -> dict[str, Any]:
    """The offer a secretary sees before her phone rings: who calls, why, for which practice.

    `calls_today` counts this caller's calls to the practice today, this one included (1: first
    call); `ivr_answers` are the (menu, digit) pairs in the order the caller gave them;
    `queued_at` is when the caller entered the queue (her console counts the wait from it; None
    for an offer that did not wait in line, e.g. a callback task).
    """
    q = dialplan.queues.get(queue) if queue else None
    return {
        "v": SCHEMA_VERSION,
        "type": "screen_pop",
        "call_id": call_id,
        "at": _iso(at),
        "queued_at": _iso(queued_at) if queued_at is not None else None,
        "secretary": secretary,
        "practice": dialplan.practice,
        "practice_name": dialplan.name,
        "site": _site(dialplan.sites[site]) if site and site in dialplan.sites else None,
        "queue": {"id": q.name, "label": q.label} if q else None,
        "caller": {
            "number": caller or None,
            "withheld": not caller,
            "calls_today": calls_today,
            "calls_today_label": calls_today_label(calls_today),
        },
        "reason": reason,
        "tier": tier,
        "tier_label": tier_label(tier) if tier else None,
        "ivr_answers": [ivr_answer(dialplan, menu, digit) for menu, digit in ivr_answers],
        "console_url": console_url,
        "card": practice_card(dialplan),
    }


def tier_label(tier: str) -> str:
    """An escalation tier's name as the secretary reads it (`vital` -> `Urgence vitale`)."""
    return TIERS.get(tier, tier)


def ivr_answer(dialplan: Dialplan, menu: str, digit: str) -> dict[str, Any]:
    """One IVR answer with what it meant in the dialplan (the option's reason)."""
    spec = dialplan.ivr.get(menu)
    option = spec.options.get(digit) if spec else None
    if digit == TIMEOUT:
        label = "aucun choix (délai dépassé)"
    elif option is None:
        label = "choix invalide"
    else:
        label = option.reason or (TIERS.get(option.tier, option.tier) if option.tier else f"touche {digit}")
    return {"menu": menu, "digit": digit, "reason": option.reason if option else None,
            "tier": option.tier if option else None, "label": label}


def calls_today_label(n: int) -> str:
    if n <= 0:
        return "Nombre d'appels inconnu"
    if n == 1:
        return "Premier appel aujourd'hui"
    return f"{n}e appel aujourd'hui"


def days_label(days: Sequence[int]) -> str:
    """French for a set of weekdays (0 = Monday): `du lundi au vendredi`, `mardi et jeudi`..."""
    ordered = sorted(set(days))
    if not ordered:
        return ""
    if ordered == list(range(7)):
        return "tous les jours"
    if len(ordered) >= 3 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"du {DAY_NAMES[ordered[0]]} au {DAY_NAMES[ordered[-1]]}"
    names = [DAY_NAMES[d] for d in ordered]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " et " + names[-1]


def hours_label(hours: TimeRange) -> str:
    """`08:30-09:00` -> `de 08h30 à 09h00`."""
    start, end = str(hours).split("-")
    return f"de {start.replace(':', 'h')} à {end.replace(':', 'h')}"


def _consultation(dialplan: Dialplan, c: ConsultationType) -> dict[str, Any]:
    return {
        "id": c.id,
        "label": c.label,
        "duration_min": c.duration_min,
        "duration_label": f"{c.duration_min} min",
        "practitioners": [_practitioner_name(dialplan, p) for p in c.practitioners],
        "sites": [_site_name(dialplan, s) for s in c.sites],
        "sites_label": ", ".join(_site_name(dialplan, s) for s in c.sites) or "Tous les sites",
        "patients": c.patients,
        "patients_label": PATIENTS.get(c.patients, c.patients),
        "booking": c.booking,
        "bookable_directly": c.booking == "direct",
        "booking_label": BOOKING.get(c.booking, c.booking),
        "notes": c.notes,
    }


def _reserved(dialplan: Dialplan, r: ReservedSlot) -> dict[str, Any]:
    return {
        "days": [DAY_NAMES[d] for d in sorted(set(r.days))],
        "days_label": days_label(r.days),
        "hours": str(r.hours),
        "hours_label": hours_label(r.hours),
        "purpose": r.purpose,
        "practitioner": _practitioner_name(dialplan, r.practitioner) if r.practitioner else None,
        "site": _site_name(dialplan, r.site) if r.site else None,
    }


def _site(site: Site) -> dict[str, Any]:
    return {"id": site.id, "name": site.name, "address": site.address}


def _site_name(dialplan: Dialplan, site_id: str) -> str:
    site = dialplan.sites.get(site_id)
    return site.name if site else site_id


def _practitioner_name(dialplan: Dialplan, practitioner_id: str) -> str:
    p = dialplan.practitioners.get(practitioner_id)
    return p.name if p else practitioner_id


def platform_label(platform: str) -> str:
    """The diary platform's name as people write it (Doctolib, ClickDoc...)."""
    return PLATFORMS.get(platform.lower(), platform)


def _iso(at: dt.datetime) -> str:
    return at.isoformat(timespec="seconds")
