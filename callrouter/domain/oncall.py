"""Who is on call at a local time, from the weekly rota, the shifts of an iCalendar feed, and the
dated exceptions; and why.

Precedence: exceptions, then the feed's shifts, then the weekly pattern (cut by `until`). On a
public holiday of the rota's `holiday_calendar` (the practice's calendar) the weekly pattern is
replaced by the holiday's cover: the ranges of the weekday it is covered like (Sunday by default),
or the rota's own holiday entries. Exceptions and feed shifts are dated: they apply as written, on
holidays too. A range belongs to the day it starts on, so a holiday's night is the holiday's (it
runs into the next morning), and the night before a holiday is that weekday's; a range started the
day before runs to its end before the day's own ranges apply.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterator

from callrouter.domain import calendar
from callrouter.domain.model import (
    MINUTES_PER_DAY,
    WEEKDAYS,
    HolidayCover,
    OnCallRota,
    Period,
    Recurrence,
    RotaShift,
    TimeRange,
)

DAY = dt.timedelta(days=1)
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

EXCEPTION, FEED, WEEKLY, HOLIDAY, ENDED, NONE = "exception", "feed", "weekly", "holiday", "ended", "none"


@dataclass(frozen=True)
class OnCall:
    """Who is on call (None: nobody), which part of the rota says so, and in words."""

    who: str | None
    rule: str  # exception | feed | weekly | holiday | ended | none
    detail: str


@dataclass(frozen=True)
class OnCallSegment:
    period: Period
    who: str | None
    rule: str
    detail: str


@dataclass(frozen=True)
class DayPattern:
    """The ranges starting on one day, and the part of the rota they come from."""

    ranges: tuple[tuple[TimeRange, str], ...]
    rule: str  # weekly | holiday
    detail: str


def on_call_at(rota: OnCallRota, local: dt.datetime) -> str | None:
    """The practitioner id on call, or None (a declared hole, no entry, or the rota has ended)."""
    return on_call(rota, local).who


def on_call(rota: OnCallRota, local: dt.datetime) -> OnCall:
    """Who is on call at a naive local time, and why (see the module docstring for the order)."""
    for exc in rota.exceptions:
        if exc.period.contains(local):
            return OnCall(exc.who, EXCEPTION, f"exception {_span(exc.period)}")
    for shift in rota.shifts:
        if shift_covers(shift, local):
            return OnCall(shift.who, FEED, "iCalendar feed" + ("" if shift.who else ": a declared hole"))
    if rota.until is not None and local.date() > rota.until:
        return OnCall(None, ENDED, f"the rota ended on {rota.until.isoformat()}")
    minute = local.hour * 60 + local.minute
    before = day_pattern(rota, local.date() - DAY)
    for hours, who in before.ranges:
        if hours.crosses_midnight and minute < hours.end:
            return OnCall(who, before.rule, f"{before.detail} {hours}")
    today = day_pattern(rota, local.date())
    for hours, who in today.ranges:
        if (hours.crosses_midnight and minute >= hours.start) or (hours.start <= minute < hours.end):
            return OnCall(who, today.rule, f"{today.detail} {hours}")
    return OnCall(None, NONE, "no entry of the rota")


def holiday_name(rota: OnCallRota, day: dt.date) -> str | None:
    """The public holiday of the rota's calendar on `day`, if any."""
    if rota.holiday_calendar is None:
        return None
    country, subdivision = rota.holiday_calendar
    return calendar.holidays_for(country, subdivision, day.year).get(day)


def day_pattern(rota: OnCallRota, day: dt.date) -> DayPattern:
    """The weekly pattern's ranges starting on `day`: its weekday's, or the holiday cover's."""
    name = holiday_name(rota, day)
    if name is None:
        return DayPattern(_weekday_ranges(rota, day.weekday()), WEEKLY, f"weekly pattern ({WEEKDAYS[day.weekday()]})")
    cover = rota.holidays
    if cover.entries:
        return DayPattern(tuple((e.hours, e.who) for e in cover.entries), HOLIDAY,
                          f"public holiday ({name}), the rota's holiday entries")
    like = day.weekday() if cover.like is None else cover.like
    how = "as usual" if cover.like is None else "covered like"
    return DayPattern(_weekday_ranges(rota, like), HOLIDAY, f"public holiday ({name}), {how} {WEEKDAYS[like]}")


def holiday_spans(rota: OnCallRota, first: dt.date, last: dt.date) -> list[tuple[dt.date, str, Period]]:
    """The public holidays in [first, last] and the local hours their cover decides: the whole
    day, and the next morning up to where the holiday's night (its own, or the one the weekday
    would have had) ends."""
    out = []
    day = first
    while day <= last:
        name = holiday_name(rota, day)
        if name is not None:
            nights = [r for r, _ in (*day_pattern(rota, day).ranges, *_weekday_ranges(rota, day.weekday()))
                      if r.crosses_midnight]
            start = dt.datetime.combine(day, dt.time())
            out.append((day, name, Period(start, start + DAY + dt.timedelta(minutes=max((r.end for r in nights), default=0)))))
        day += DAY
    return out


def describe_cover(cover: HolidayCover) -> str:
    """The holiday rule in the dialplan's words."""
    if cover.entries:
        return "the rota's own entries " + ", ".join(f"{e.hours} {e.who}" for e in cover.entries)
    if cover.like is None:
        return "usual (the pattern of the weekday it falls on)"
    return f"{WEEKDAYS[cover.like]} (covered like a {DAY_NAMES[cover.like]})"


def _weekday_ranges(rota: OnCallRota, weekday: int) -> tuple[tuple[TimeRange, str], ...]:
    return tuple((e.hours, e.who) for e in rota.weekly if weekday in e.days)


def _span(period: Period) -> str:
    return f"{period.start:%Y-%m-%d %H:%M} -> {period.end:%Y-%m-%d %H:%M}"


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
        for r, _ in day_pattern(rota, day).ranges:
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


def who_when(rota: OnCallRota, window: Period) -> list[OnCallSegment]:
    """Local periods covering `window` exactly, each with one answer (who, by which rule) all through."""
    points = sorted({window.start, window.end, *(p for p in rota_candidates(rota, window.start.date(), window.end.date())
                                                  if window.start < p < window.end)})
    out: list[OnCallSegment] = []
    for a, b in zip(points, points[1:]):
        got = on_call(rota, a)
        if out and (out[-1].who, out[-1].rule, out[-1].detail) == (got.who, got.rule, got.detail):
            last = out[-1]
            out[-1] = OnCallSegment(Period(last.period.start, b), last.who, last.rule, last.detail)
        else:
            out.append(OnCallSegment(Period(a, b), got.who, got.rule, got.detail))
    return out


def holes(rota: OnCallRota, window: Period) -> list[Period]:
    """Local periods inside `window` where nobody is on call."""
    out: list[Period] = []
    for seg in who_when(rota, window):
        if seg.who is None:
            if out and out[-1].end == seg.period.start:
                out[-1] = Period(out[-1].start, seg.period.end)
            else:
                out.append(seg.period)
    return out
