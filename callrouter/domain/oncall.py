"""Who is on call at a local time, from the weekly rota, the shifts of an iCalendar feed, and the
dated exceptions."""

from __future__ import annotations

import datetime as dt
from typing import Iterator

from callrouter.domain.model import MINUTES_PER_DAY, OnCallRota, Period, Recurrence, RotaShift

DAY = dt.timedelta(days=1)


def on_call_at(rota: OnCallRota, local: dt.datetime) -> str | None:
    """The practitioner id on call, or None (a declared hole, no entry, or the rota has ended).

    Exceptions win over the feed's shifts, which win over the weekly pattern; the first shift of
    the feed that covers `local` decides. `until` ends the weekly pattern only: exceptions and
    shifts are dated already. A weekly range crossing midnight belongs to the day it starts on,
    like opening hours.
    """
    for exc in rota.exceptions:
        if exc.period.contains(local):
            return exc.who
    for shift in rota.shifts:
        if shift_covers(shift, local):
            return shift.who
    if rota.until is not None and local.date() > rota.until:
        return None
    minute = local.hour * 60 + local.minute
    weekday = local.weekday()
    for entry in rota.weekly:
        r = entry.hours
        if weekday in entry.days:
            if (r.crosses_midnight and minute >= r.start) or (not r.crosses_midnight and r.start <= minute < r.end):
                return entry.who
        if (weekday - 1) % 7 in entry.days and r.crosses_midnight and minute < r.end:
            return entry.who
    return None


def shift_covers(shift: RotaShift, local: dt.datetime) -> bool:
    span = shift.period.end - shift.period.start
    return any(p.contains(local) for p in occurrences(shift, (local - span).date(), local.date()))


def occurrences(shift: RotaShift, first_day: dt.date, last_day: dt.date,
                honour_exdates: bool = True) -> Iterator[Period]:
    """The shift's occurrences starting on a day in [first_day, last_day], in order."""
    start, span = shift.period.start, shift.period.end - shift.period.start
    rec = shift.recurrence
    if rec is None:
        if first_day <= start.date() <= last_day:
            yield shift.period
        return
    day = max(first_day, start.date())
    while day <= last_day:
        begin = dt.datetime.combine(day, start.time())
        if rec.until is not None and begin > rec.until:
            return
        if _recurs_on(rec, start.date(), day) and not (honour_exdates and begin in rec.exdates):
            yield Period(begin, begin + span)
        day += DAY


def _recurs_on(rec: Recurrence, first: dt.date, day: dt.date) -> bool:
    """Whether a recurrence starting on `first` has an occurrence on `day` (>= first)."""
    if day == first:
        return True  # the first occurrence is DTSTART, in the rule or not
    if rec.freq == "daily":
        return (day - first).days % rec.interval == 0
    if day.weekday() not in (rec.days or (first.weekday(),)):
        return False
    week_of = lambda d: d - dt.timedelta(days=(d.weekday() - rec.week_start) % 7)  # noqa: E731
    return ((week_of(day) - week_of(first)).days // 7) % rec.interval == 0


def nth_start(shift: RotaShift, count: int, horizon_days: int = 20 * 366) -> dt.datetime | None:
    """The start of occurrence number `count` (1 = the first), excluded dates counted (RFC 5545:
    COUNT bounds the rule, EXDATE then removes); None if beyond the horizon."""
    seen = 0
    first = shift.period.start.date()
    for period in occurrences(shift, first, first + dt.timedelta(days=horizon_days), honour_exdates=False):
        seen += 1
        if seen == count:
            return period.start
    return None


def rota_candidates(rota: OnCallRota, start: dt.date, end: dt.date) -> list[dt.datetime]:
    """Local wall times in [start, end] where the person on call may change."""
    points: set[dt.datetime] = set()
    day = start - dt.timedelta(days=1)
    while day <= end:
        midnight = dt.datetime.combine(day, dt.time())
        points.add(midnight)
        for entry in rota.weekly:
            if day.weekday() in entry.days:
                r = entry.hours
                points.add(midnight + dt.timedelta(minutes=r.start))
                points.add(midnight + dt.timedelta(minutes=r.end + (MINUTES_PER_DAY if r.crosses_midnight else 0)))
        day += dt.timedelta(days=1)
    for exc in rota.exceptions:
        points.update((exc.period.start, exc.period.end))
    for shift in rota.shifts:
        span = shift.period.end - shift.period.start
        for period in occurrences(shift, start - span - DAY, end):
            points.update((period.start, period.end))
    if rota.until is not None:
        points.add(dt.datetime.combine(rota.until + dt.timedelta(days=1), dt.time()))
    return sorted(points)


def holes(rota: OnCallRota, window: Period) -> list[Period]:
    """Local periods inside `window` where nobody is on call."""
    out: list[Period] = []
    points = [window.start] + [p for p in rota_candidates(rota, window.start.date(), window.end.date())
                               if window.start < p < window.end] + [window.end]
    points = sorted(set(points))
    for a, b in zip(points, points[1:]):
        if on_call_at(rota, a) is None:
            if out and out[-1].end == a:
                out[-1] = Period(out[-1].start, b)
            else:
                out.append(Period(a, b))
    return out
