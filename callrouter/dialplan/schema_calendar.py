"""The dialplan's time zone, calendar (holidays, closures, openings), weekly hours and sites
(docs/dialplan.md: calendar, hours, sites)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from callrouter.dialplan.context import Context, prompt_ref
from callrouter.dialplan.errors import did_you_mean
from callrouter.dialplan.fields import Reader, join
from callrouter.dialplan.schema_routes import read_action
from callrouter.dialplan.yamlsrc import YMap, YNode, YScalar, YSeq
from callrouter.domain import calendar
from callrouter.domain.model import (
    WEEKDAYS,
    CalendarSpec,
    Closure,
    Opening,
    Period,
    Site,
    TimeRange,
    WeeklyHours,
)


def read_timezone(r: Reader, node: YNode | None) -> str | None:
    name = r.text(node, "timezone")
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        r.error(node.line, "timezone", f'"{name}" is not a time zone{did_you_mean(name, available_timezones())}; '
                                       f"use a tz database name such as Europe/Paris or Indian/Reunion")
        return None
    return name


def read_calendar_section(ctx: Context, node: YNode | None, path: str):
    r = ctx.reader
    if node is None:
        return "FR", None, (), ()
    m = r.mapping(node, path, ("country", "subdivision", "closures", "openings"))
    if m is None:
        return "FR", None, (), ()
    country = (r.text(m.get("country"), join(path, "country")) or "FR").upper()
    subdivision = read_subdivision(r, country, m.get("subdivision"), join(path, "subdivision"))
    closures = tuple(r.each(m.get("closures"), join(path, "closures"), lambda n, p: _closure(ctx, n, p)))
    openings = tuple(r.each(m.get("openings"), join(path, "openings"), lambda n, p: _opening(ctx, n, p)))
    return country, subdivision, closures, openings


def read_subdivision(r: Reader, country: str, node: YNode | None, path: str) -> str | None:
    value = r.text(node, path, required=False)
    if value is None:
        return None
    try:
        return calendar.canonical_subdivision(country, value)
    except NotImplementedError:
        r.error(node.line, path, f'no public holidays are known for country "{country}"')
    except (ValueError, KeyError) as exc:
        r.error(node.line, path, f"{exc}{did_you_mean(value, calendar.subdivision_names(country))}")
    return None


def read_period(r: Reader, m: YMap, path: str) -> Period | None:
    """from/to as dates (whole days, inclusive) or date-times (end exclusive); or date + hours."""
    if "date" in m.items:
        day = r.date_or_datetime(m.get("date"), join(path, "date"))
        if day is None:
            return None
        if isinstance(day, dt.datetime):
            r.error(m.get("date").line, join(path, "date"), "date takes a day only; put the times in hours")
            return None
        rng = r.time_range(m.get("hours"), join(path, "hours")) if "hours" in m.items else None
        start = dt.datetime.combine(day, dt.time())
        if rng is None:
            return Period(start, start + dt.timedelta(days=1))
        end_offset = rng.end + (1440 if rng.crosses_midnight else 0)
        return Period(start + dt.timedelta(minutes=rng.start), start + dt.timedelta(minutes=end_offset))
    if "from" not in m.items or "to" not in m.items:
        r.error(m.line, path, 'give either "date" (and optional "hours") or both "from" and "to"')
        return None
    a = r.date_or_datetime(m.get("from"), join(path, "from"))
    b = r.date_or_datetime(m.get("to"), join(path, "to"))
    if a is None or b is None:
        return None
    start = a if isinstance(a, dt.datetime) else dt.datetime.combine(a, dt.time())
    end = b if isinstance(b, dt.datetime) else dt.datetime.combine(b + dt.timedelta(days=1), dt.time())
    if end <= start:
        r.error(m.get("to").line, join(path, "to"), f"ends ({b}) before it starts ({a})")
        return None
    return Period(start, end)


def _closure(ctx: Context, node: YNode, path: str) -> Closure | None:
    r = ctx.reader
    m = r.mapping(node, path, ("from", "to", "date", "hours", "reason", "announce", "route"), required=("reason",))
    if m is None:
        return None
    period = read_period(r, m, path)
    reason = r.text(m.get("reason"), join(path, "reason"))
    announce = prompt_ref(ctx, m.get("announce"), join(path, "announce"))
    route = read_action(ctx, m.get("route"), join(path, "route")) if "route" in m.items else None
    if period is None or reason is None:
        return None
    return Closure(period, reason, announce, route)


def _opening(ctx: Context, node: YNode, path: str) -> Opening | None:
    r = ctx.reader
    m = r.mapping(node, path, ("from", "to", "date", "hours", "reason"), required=("reason",))
    if m is None:
        return None
    period = read_period(r, m, path)
    reason = r.text(m.get("reason"), join(path, "reason"))
    return Opening(period, reason) if period and reason else None


def read_hours(ctx: Context, node: YNode | None, path: str) -> WeeklyHours:
    r = ctx.reader
    days: list[list[tuple[TimeRange, int]]] = [[] for _ in range(7)]
    if node is None or (isinstance(node, YScalar) and node.value is None):
        return WeeklyHours()
    if not isinstance(node, YMap):
        r.error(node.line, path, "expected a mapping of days to time ranges, e.g. mon-fri: [08:00-12:30, 13:30-19:00]")
        return WeeklyHours()
    for key, value in node.items.items():
        kpath = join(path, key)
        spec = r.days(key, node.key_lines[key], kpath)
        if isinstance(value, YSeq):
            items = value.items
        elif isinstance(value, YScalar) and value.value is None:
            items = []  # "sun:" with nothing: closed that day
        else:
            items = [value]
        ranges = [rng for i, item in enumerate(items) if (rng := r.time_range(item, f"{kpath}[{i}]"))]
        for day in spec or ():
            for rng in ranges:
                days[day].append((rng, node.key_lines[key]))
    _check_overlaps(r, days, path)
    return WeeklyHours(tuple(tuple(sorted((rng for rng, _ in d), key=lambda x: x.start)) for d in days))


def _check_overlaps(r: Reader, days: list[list[tuple[TimeRange, int]]], path: str) -> None:
    """Ranges of one day may not overlap, nor overlap the part of yesterday's range after midnight."""
    for d in range(7):
        spans = [(rng.start, rng.end if not rng.crosses_midnight else 1440 + rng.end, rng, line) for rng, line in days[d]]
        spans += [(-1440 + rng.start, rng.end, rng, line) for rng, line in days[(d - 1) % 7] if rng.crosses_midnight]
        spans.sort(key=lambda s: s[0])
        for (a0, a1, ra, la), (b0, b1, rb, lb) in zip(spans, spans[1:]):
            if b0 < a1:
                r.error(max(la, lb), path, f"on {WEEKDAYS[d]}, {ra} overlaps {rb}")


def read_sites(ctx: Context, node: YNode | None, practice_cal: CalendarSpec) -> dict[str, Site]:
    r = ctx.reader
    out: dict[str, Site] = {}
    if node is None:
        return out
    m = r.mapping(node, "sites", None)  # keys are site ids, checked below
    if m is None:
        return out
    for sid, snode in m.items.items():
        path = join("sites", sid)
        if not r.ident(YScalar(sid, m.key_lines[sid], sid), path):
            continue
        s = r.mapping(snode, path, ("name", "address", "numbers", "hours", "subdivision", "closures", "openings"),
                      required=("name", "numbers"))
        if s is None:
            continue
        hours = read_hours(ctx, s.get("hours"), join(path, "hours")) if "hours" in s.items else practice_cal.hours
        sub = (read_subdivision(r, practice_cal.country, s.get("subdivision"), join(path, "subdivision"))
               if "subdivision" in s.items else practice_cal.subdivision)
        closures = r.each(s.get("closures"), join(path, "closures"), lambda n, p: _closure(ctx, n, p))
        openings = r.each(s.get("openings"), join(path, "openings"), lambda n, p: _opening(ctx, n, p))
        cal = CalendarSpec(practice_cal.timezone, practice_cal.country, sub, hours,
                           practice_cal.closures + tuple(closures), practice_cal.openings + tuple(openings))
        out[sid] = Site(sid, r.text(s.get("name"), join(path, "name")) or sid,
                        r.text(s.get("address"), join(path, "address"), required=False) or "",
                        tuple(r.each(s.get("numbers"), join(path, "numbers"), r.phone)), cal)
    return out
