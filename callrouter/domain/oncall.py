"""Who is on call at a local time, from the weekly rota and its dated exceptions."""

from __future__ import annotations

import datetime as dt

from callrouter.domain.model import MINUTES_PER_DAY, OnCallRota, Period


def on_call_at(rota: OnCallRota, local: dt.datetime) -> str | None:
    """The practitioner id on call, or None (a declared hole, no entry, or the rota has ended).

    Exceptions win over the weekly pattern; a weekly range crossing midnight belongs to the day it
    starts on, like opening hours.
    """
    for exc in rota.exceptions:
        if exc.period.contains(local):
            return exc.who
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
