"""The report's words and numbers as a French reader expects them: rates as numerator/denominator
with the percentage ("-" without calls), durations in seconds and minutes, dates spelt out,
decimal commas and the narrow no-break space before "%" and inside large numbers."""

from __future__ import annotations

import datetime as dt

from callrouter.domain.kpis import Period, Rate

NNBSP = "\u202f"  # narrow no-break space: before "%" and ":", between thousands
NBSP = "\u00a0"
NONE = "-"
WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
WEEKDAYS_SHORT = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")
TIERS = {"vital": "Urgence vitale", "urgent": "Urgent"}
# What an out-of-hours caller got (callrouter.domain.kpis.GOT).
GOT = {"escalation": "escalade déclenchée", "secretary": "répondu par une secrétaire",
       "voicemail": "messagerie vocale", "callback": "rappel demandé", "message": "message d'information",
       "menu": "menu vocal sans suite", "other": "raccroché ou autre"}


def number(n: int | float, digits: int = 0) -> str:
    """1234 -> "1 234", 12.5 (1 digit) -> "12,5"."""
    text = f"{n:,.{digits}f}".replace(",", NNBSP).replace(".", ",")
    return text


def percent(value: float | None, digits: int = 0) -> str:
    return NONE if value is None else f"{number(100 * value, digits)}{NNBSP}%"


def rate(r: Rate) -> str:
    """"12/40 (30 %)"; "-" when there is no call to count."""
    if not r.denominator:
        return NONE
    return f"{r.numerator}/{r.denominator} ({percent(r.value)})"


def ratio(r: Rate) -> str:
    """"12/40"; "-" when there is no call to count."""
    return NONE if not r.denominator else f"{r.numerator}/{r.denominator}"


def seconds(s: float | None) -> str:
    """8 s, 1 min 05 s, 2 h 03 min; "-" for none."""
    if s is None:
        return NONE
    total = int(round(s))
    if total < 60:
        return f"{total}{NBSP}s"
    if total < 3600:
        m, sec = divmod(total, 60)
        return f"{m}{NBSP}min{NBSP}{sec:02d}{NBSP}s" if sec else f"{m}{NBSP}min"
    h, rest = divmod(total, 3600)
    return f"{h}{NBSP}h{NBSP}{rest // 60:02d}{NBSP}min"


def day(d: dt.date, weekday: bool = True) -> str:
    """"lundi 23 mars 2026" ("1er" for the first of a month)."""
    nth = "1er" if d.day == 1 else str(d.day)
    text = f"{nth} {MONTHS[d.month - 1]} {d.year}"
    return f"{WEEKDAYS[d.weekday()]} {text}" if weekday else text


def short_day(d: dt.date) -> str:
    """"lun. 23/03"."""
    return f"{WEEKDAYS_SHORT[d.weekday()]} {d.day:02d}/{d.month:02d}"


def period(p: Period) -> str:
    """"du lundi 23 mars au dimanche 29 mars 2026", or "le lundi 23 mars 2026" for one day."""
    last = p.end - dt.timedelta(days=1)
    if last == p.start:
        return f"le {day(p.start)}"
    first = day(p.start) if p.start.year != last.year else f"{WEEKDAYS[p.start.weekday()]} " \
        f"{'1er' if p.start.day == 1 else p.start.day} {MONTHS[p.start.month - 1]}"
    return f"du {first} au {day(last)}"


def iso_week(p: Period) -> str | None:
    """"semaine 13" when the period is exactly one ISO week."""
    year, week, weekday = p.start.isocalendar()
    return f"semaine {week}" if weekday == 1 and (p.end - p.start).days == 7 else None


def tier(name: str) -> str:
    return TIERS.get(name, name.replace("_", " ").capitalize())


def moment(t: dt.datetime, zone: dt.tzinfo) -> str:
    """"23/03/2026 à 14 h 05" in the practice's time."""
    local = t.astimezone(zone)
    return f"{local.day:02d}/{local.month:02d}/{local.year} à {local.hour}{NBSP}h{NBSP}{local.minute:02d}"
