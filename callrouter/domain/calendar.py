"""Is the practice open at an instant, and why; where the answer can change.

Precedence, most specific first (documented in the README):
  1. a one-off opening (explicit exception, even inside a closure or on a holiday),
  2. a practice closure,
  3. a public holiday of the practice's country and subdivision (the whole civil day),
  4. the weekly hours (ranges may cross midnight; they then belong to the day they start on).
Everything is computed on local wall-clock time in the practice's time zone.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from callrouter.domain.model import MINUTES_PER_DAY, CalendarSpec, Closure, Opening, WeeklyHours

OPEN = "open"
CLOSED = "closed"
HOLIDAY = "holiday"
CLOSURE = "closure"
STATUSES = (OPEN, CLOSED, HOLIDAY, CLOSURE)

# Names accepted for `subdivision`, mapped to the holidays package's codes. 67 and 68 share the
# Alsace code; overseas départements by number or name.
SUBDIVISION_ALIASES = {
    "67": "6AE",
    "68": "6AE",
    "alsace": "6AE",
    "moselle": "57",
    "guadeloupe": "971",
    "martinique": "972",
    "guyane": "973",
    "reunion": "974",
    "la reunion": "974",
    "la réunion": "974",
    "mayotte": "976",
    "975": "PM",  # Saint-Pierre-et-Miquelon, and the overseas collectivities by their numbers
    "977": "BL",
    "978": "MF",
    "986": "WF",
    "987": "PF",
    "988": "NC",
}
# Mainland départements, by the number an administrator writes: those without holidays of their
# own (all but 57, 67, 68) keep the national ones. Corsica is 2A and 2B (20 no longer exists).
MAINLAND_DEPARTEMENTS = tuple(f"{n:02d}" for n in range(1, 96) if n != 20) + ("2A", "2B")
OVERSEAS_DEPARTEMENTS = ("971", "972", "973", "974", "976")


@functools.lru_cache(maxsize=256)
def canonical_subdivision(country: str, subdivision: str | None) -> str | None:
    """The holidays package's code for a subdivision, None for a French département with only the
    national holidays, or raise ValueError saying what is accepted."""
    if subdivision is None:
        return None
    cls = holidays_lib.country_holidays(country).__class__
    known = set(cls.subdivisions)
    key = str(subdivision).strip()
    if key in known:
        return key
    if country == "FR":
        number = key.upper().zfill(2) if key.isdigit() else key.upper()
        if SUBDIVISION_ALIASES.get(number) in known:
            return SUBDIVISION_ALIASES[number]
        if number in MAINLAND_DEPARTEMENTS:
            return None
        if number == "20":
            raise ValueError(f"unknown subdivision {subdivision!r} for FR: Corsica has two départements, "
                             f"2A (Corse-du-Sud) or 2B (Haute-Corse)")
    alias = SUBDIVISION_ALIASES.get(key.lower()) or getattr(cls, "subdivisions_aliases", {}).get(key)
    if alias and alias in known:
        return alias
    hint = ""
    if country == "FR":
        hint = "a département number (01 to 95, 2A or 2B for Corsica; 971, 972, 973, 974, 976 overseas) or "
        known = {k for k in known if not k.startswith("Zone")}  # school-holiday zones, not public holidays
    raise ValueError(f"unknown subdivision {subdivision!r} for {country}; use {hint}one of {', '.join(sorted(known))}")


def subdivision_names(country: str) -> tuple[str, ...]:
    """Every value `canonical_subdivision` accepts for a country, for "did you mean" hints."""
    cls = holidays_lib.country_holidays(country).__class__
    names = {*cls.subdivisions, *getattr(cls, "subdivisions_aliases", {})}
    if country == "FR":
        names |= {*SUBDIVISION_ALIASES, *MAINLAND_DEPARTEMENTS, *OVERSEAS_DEPARTEMENTS}
    return tuple(sorted(names))


@functools.lru_cache(maxsize=4096)
def holidays_for(country: str, subdivision: str | None, year: int) -> dict[dt.date, str]:
    """Public holidays of a year, movable feasts included, with their French names."""
    h = holidays_lib.country_holidays(country, subdiv=subdivision, years=year, language="fr")
    return dict(h.items())


@dataclass(frozen=True)
class CalendarState:
    status: str  # OPEN | CLOSED | HOLIDAY | CLOSURE
    rule: str  # hours | after_hours | opening | closure | holiday
    detail: str  # words for an administrator: which range, holiday or closure
    closure: Closure | None = None


def local_time(spec_tz: str, now: dt.datetime) -> dt.datetime:
    """Naive local wall-clock time of an aware instant."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(zone(spec_tz)).replace(tzinfo=None)


@functools.lru_cache(maxsize=None)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def state_at(spec: CalendarSpec, now: dt.datetime) -> CalendarState:
    """The calendar state at an aware instant."""
    return state_at_local(spec, local_time(spec.timezone, now))


def state_at_local(spec: CalendarSpec, local: dt.datetime) -> CalendarState:
    for opening in spec.openings:
        if opening.period.contains(local):
            return CalendarState(OPEN, "opening", f"exceptional opening: {opening.reason}")
    for closure in spec.closures:
        if closure.period.contains(local):
            return CalendarState(CLOSURE, "closure", f"closure: {closure.reason}", closure)
    day = local.date()
    name = holidays_for(spec.country, spec.subdivision, day.year).get(day)
    if name is not None:
        return CalendarState(HOLIDAY, "holiday", f"public holiday: {name}")
    in_range = open_range(spec.hours, local)
    if in_range is not None:
        return CalendarState(OPEN, "hours", f"opening hours {in_range}")
    return CalendarState(CLOSED, "after_hours", "outside opening hours")


def open_range(hours: WeeklyHours, local: dt.datetime) -> str | None:
    """The weekly range containing a local time, as text, or None."""
    minute = local.hour * 60 + local.minute
    weekday = local.weekday()
    for r in hours.days[weekday]:
        if r.crosses_midnight:
            if minute >= r.start:
                return str(r)
        elif r.start <= minute < r.end:
            return str(r)
    for r in hours.days[(weekday - 1) % 7]:
        if r.crosses_midnight and minute < r.end:
            return f"{r} (from the day before)"
    return None


def boundary_candidates(spec: CalendarSpec, start: dt.date, end: dt.date) -> list[dt.datetime]:
    """Every local wall time in [start, end] at which the calendar state may change.

    Times that occur twice in a DST fall-back are returned with both folds, so converting them to
    instants misses none.
    """
    points: set[dt.datetime] = set()
    day = start - dt.timedelta(days=1)
    while day <= end:
        midnight = dt.datetime.combine(day, dt.time())
        points.add(midnight)
        for r in spec.hours.days[day.weekday()]:
            points.add(midnight + dt.timedelta(minutes=r.start))
            end_day_offset = MINUTES_PER_DAY if r.crosses_midnight else 0
            points.add(midnight + dt.timedelta(minutes=r.end + end_day_offset))
        day += dt.timedelta(days=1)
    lo = dt.datetime.combine(start - dt.timedelta(days=1), dt.time())
    hi = dt.datetime.combine(end + dt.timedelta(days=2), dt.time())
    periods: list[Closure | Opening] = [*spec.closures, *spec.openings]
    for item in periods:
        for t in (item.period.start, item.period.end):
            if lo <= t <= hi:
                points.add(t)
    return sorted(points)


def to_instants(tz: str, locals_: list[dt.datetime]) -> list[dt.datetime]:
    """Aware UTC instants for local wall times, both folds where a time is ambiguous, plus the
    zone's offset changes in between (a boundary inside a spring-forward gap is crossed at the
    instant of the jump)."""
    tzinfo = zone(tz)
    out: set[dt.datetime] = set()
    for t in locals_:
        for fold in (0, 1):
            out.add(t.replace(tzinfo=tzinfo, fold=fold).astimezone(dt.timezone.utc))
    if locals_:
        out.update(offset_changes(tz, min(out), max(out)))
    return sorted(out)


def offset_changes(tz: str, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """UTC instants in [start, end] where the zone's UTC offset changes (whole minutes)."""
    tzinfo = zone(tz)
    changes = []
    day = start.replace(minute=0, second=0, microsecond=0)
    step = dt.timedelta(hours=12)
    while day <= end:
        nxt = day + step
        if day.astimezone(tzinfo).utcoffset() != nxt.astimezone(tzinfo).utcoffset():
            lo, hi = day, nxt  # offset(lo) != offset(hi): bisect to the minute
            while hi - lo > dt.timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(second=0, microsecond=0)
                if mid.astimezone(tzinfo).utcoffset() == lo.astimezone(tzinfo).utcoffset():
                    lo = mid
                else:
                    hi = mid
            changes.append(hi)
        day = nxt
    return changes
