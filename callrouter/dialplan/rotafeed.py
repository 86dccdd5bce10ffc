"""On-call shifts from an iCalendar feed: events -> `RotaShift`s in the practice's local time.

Who an event names comes from its SUMMARY: an exact `map` entry first ("Dr Martin": dr-martin),
else a `map` name written inside the summary ("Garde Dr Martin"), else a practitioner's id or
name. `nobody` in the map declares a hole. An event naming nobody we know is an error (file:line):
a rota silently missing a night is what the feed is meant to prevent.

Times: a TZID or UTC time is converted to the practice's zone, a floating time is read as local, an
all-day event covers whole local days. A recurring event repeats at the local wall-clock time of
its first occurrence and keeps its wall-clock length: a 19:00-08:00 weekly shift still ends at
08:00 on the night the clocks change.

The rota's public-holiday rule (`on_call.holidays`) does not apply to these shifts: they are dated,
so a feed already says who covers each holiday (a recurring event that should skip one carries an
EXDATE or a moved instance). Where the feed has no event, the weekly pattern and its rule apply.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Mapping
from zoneinfo import ZoneInfo

from callrouter.domain import ical
from callrouter.domain.model import Period, Practitioner, Recurrence, RotaShift
from callrouter.domain.oncall import nth_start

# (practice, url) -> (the feed's last good content, where it was read for messages), or None
FeedReader = Callable[[str, str], "tuple[bytes, str] | None"]
NOBODY = "nobody"
# A rota's shifts: within these years, and none longer than this (a feed naming someone for
# centuries is a typing error, and whole-day scans of a shift at each call must stay short).
YEARS = (1900, 2199)
MAX_SHIFT = dt.timedelta(days=366)


def cache_path(cache_dir: Path, practice: str, url: str) -> Path:
    """The daemon's copy of a practice's feed: one file per (practice, URL)."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{practice}-{digest}.ics"


def host_of(url: str) -> str:
    """The part of a feed URL fit for logs and messages (path and query often hold a token)."""
    return urllib.parse.urlsplit(url).hostname or "?"


def cache_reader(cache_dir: Path | None) -> FeedReader | None:
    """Reads the daemon's cached copies (absent until the first successful fetch)."""
    if cache_dir is None:
        return None

    def read(practice: str, url: str) -> tuple[bytes, str] | None:
        path = cache_path(cache_dir, practice, url)
        try:
            return path.read_bytes(), str(path)
        except OSError:
            return None
    return read


def shifts_from_ics(data: bytes, timezone: str, names: Mapping[str, str | None],
                    practitioners: Mapping[str, Practitioner]) -> tuple[tuple[RotaShift, ...], list[ical.ParseError]]:
    """The feed's shifts, or the problems found (each with its line in the feed)."""
    cal = ical.parse(data)
    errors = list(cal.errors)
    zone = ZoneInfo(timezone)
    overrides: dict[str, list[ical.Event]] = {}
    for e in cal.events:
        if e.recurrence_id is not None and e.uid:
            overrides.setdefault(e.uid, []).append(e)
    shifts: list[RotaShift] = []
    for e in cal.events:
        if e.cancelled or (e.recurrence_id is not None and e.uid):
            continue  # a cancelled event is no shift; overrides come with their master, below
        excluded = [o.recurrence_id for o in overrides.get(e.uid or "", ()) if e.rule is not None]
        shift = _shift(e, zone, names, practitioners, errors, excluded)
        if shift is not None:
            shifts.append(shift)
        for o in overrides.pop(e.uid, ()) if e.uid and e.rule is not None else ():
            if not o.cancelled:
                moved = _shift(o, zone, names, practitioners, errors, [])
                if moved is not None:
                    shifts.insert(0, moved)  # a moved instance wins over anything else that day
    for orphans in overrides.values():  # overrides of an event the feed does not hold: plain events
        for o in orphans:
            if not o.cancelled and (moved := _shift(o, zone, names, practitioners, errors, [])) is not None:
                shifts.insert(0, moved)
    return (tuple(shifts), []) if not errors else ((), sorted(errors, key=lambda x: x.line))


def _shift(e: ical.Event, zone: ZoneInfo, names: Mapping[str, str | None],
           practitioners: Mapping[str, Practitioner], errors: list[ical.ParseError],
           excluded: list) -> RotaShift | None:
    found, who = who_from_summary(e.summary, names, practitioners)
    if not found:
        hint = f' (e.g. "{e.summary}": dr-...)' if e.summary else ""
        errors.append(ical.ParseError(e.summary_line, f'event "{e.summary or "(no SUMMARY)"}" names no practitioner: '
                                              f"add the name to on_call.ical.map{hint}, or map it to nobody"))
        return None
    if not all(YEARS[0] <= when.year <= YEARS[1] for when in (e.start, e.end, *e.exdates, *excluded)):
        errors.append(ical.ParseError(e.line, f"the event's dates must lie between the years {YEARS[0]} and "
                                              f"{YEARS[1]}"))
        return None
    start, end = local(e.start, zone), local(e.end, zone)
    if end <= start:
        return None  # an instant, not a shift
    if end - start > MAX_SHIFT:
        errors.append(ical.ParseError(e.line, f"an on-call shift of more than {MAX_SHIFT.days} days: "
                                              f"write it as shorter events (or a recurring one)"))
        return None
    recurrence = None
    if e.rule is not None:
        r = e.rule
        until = None
        if r.until is not None and r.until.year <= YEARS[1]:  # a later UNTIL: as good as none
            until = (local(r.until, zone) if isinstance(r.until, dt.datetime)
                     else dt.datetime.combine(r.until, dt.time(23, 59, 59)))
        exdates = frozenset(local(x, zone) for x in (*e.exdates, *excluded))
        recurrence = Recurrence(r.freq.lower(), r.interval, r.days, until, r.week_start, exdates)
        if r.count is not None:
            last = nth_start(RotaShift(Period(start, end), who, recurrence), r.count)
            recurrence = Recurrence(recurrence.freq, r.interval, r.days, last, r.week_start, exdates)
    return RotaShift(Period(start, end), who, recurrence)


def local(when: "dt.date | dt.datetime", zone: ZoneInfo) -> dt.datetime:
    """A feed time as a naive local wall-clock time of the practice."""
    if not isinstance(when, dt.datetime):
        return dt.datetime.combine(when, dt.time())
    if when.tzinfo is None:
        return when  # floating: local wherever it is read
    return when.astimezone(zone).replace(tzinfo=None)


def _norm(text: str) -> str:
    return " ".join(text.casefold().replace(".", " ").split())


def who_from_summary(summary: str, names: Mapping[str, str | None],
                     practitioners: Mapping[str, Practitioner]) -> tuple[bool, str | None]:
    """(found, practitioner id or None for nobody) for an event's SUMMARY."""
    s = _norm(summary)
    if not s:
        return False, None
    for name, who in names.items():
        if _norm(name) == s:
            return True, who
    inside = {who for name, who in names.items() if _contains(s, _norm(name))}
    if len(inside) == 1:
        return True, inside.pop()
    known = {p.id: p.id for p in practitioners.values()} | {p.name: p.id for p in practitioners.values()}
    for name, pid in known.items():
        if _norm(name) == s:
            return True, pid
    inside = {pid for name, pid in known.items() if _contains(s, _norm(name))}
    if len(inside) == 1:
        return True, inside.pop()
    return False, None


def _contains(text: str, word: str) -> bool:
    return bool(word) and re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text) is not None


def cli_feed_reader(cache_dir: Path | None, notes: list[str], timeout: float = 10.0) -> FeedReader:
    """For `callrouter calendar`: fetch the feed now; if that fails, the daemon's cached copy."""

    def read(practice: str, url: str) -> tuple[bytes, str] | None:
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "callrouter", "Accept": "text/calendar"})
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
                return response.read(ical.MAX_BYTES + 1), f"{practice} rota feed ({host_of(url)})"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            cached = cache_path(cache_dir, practice, url) if cache_dir is not None else None
            if cached is not None and cached.exists():
                notes.append(f"the on-call feed of {practice} ({host_of(url)}) could not be fetched ({reason}); "
                             f"using the daemon's last copy {cached}")
                return cached.read_bytes(), str(cached)
            notes.append(f"the on-call feed of {practice} ({host_of(url)}) could not be fetched ({reason}) and "
                         f"no copy is cached: the forecast ignores it")
            return None
    return read
