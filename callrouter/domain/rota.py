"""The on-call rota as frozen values: weekly entries, dated exceptions, shifts from an iCalendar
feed, and what the rota does on public holidays. oncall.py answers who is on call from them;
model.py names them too."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Mapping

from callrouter.domain.times import Period, TimeRange

@dataclass(frozen=True)
class RotaEntry:
    days: tuple[int, ...]
    hours: TimeRange
    who: str


@dataclass(frozen=True)
class RotaException:
    period: Period
    who: str | None  # None: nobody on call in that period (declared hole)


@dataclass(frozen=True)
class Recurrence:
    """A shift repeating every `interval` days (daily) or weeks (weekly, on `days`), at the local
    wall-clock time of its first occurrence; `until` is the last possible start."""

    freq: str  # daily | weekly
    interval: int = 1
    days: tuple[int, ...] = ()  # weekly: weekdays (0 = Monday); empty: the first occurrence's
    until: dt.datetime | None = None
    week_start: int = 0
    exdates: frozenset[dt.datetime] = frozenset()  # starts left out


@dataclass(frozen=True)
class RotaShift:
    """A dated on-call shift (from an iCalendar feed): `period` is its first occurrence."""

    period: Period
    who: str | None  # None: nobody on call (a declared hole)
    recurrence: Recurrence | None = None


@dataclass(frozen=True)
class RotaFeed:
    """Where a rota's shifts come from: an iCalendar file next to the dialplan, or a URL the daemon
    fetches every `refresh_s` into a cache. `names`: name in the feed -> practitioner id or None."""

    url: str | None
    file: str | None
    names: Mapping[str, str | None]
    refresh_s: float = 900.0


SUNDAY = 6


@dataclass(frozen=True)
class HolidayEntry:
    """A range of the rota's own public-holiday pattern (starting on the holiday, like a weekly one)."""

    hours: TimeRange
    who: str


@dataclass(frozen=True)
class HolidayCover:
    """What the weekly pattern does on a public holiday: the ranges of weekday `like` (default
    Sunday; None: the weekday the holiday falls on), or, when `entries` is given, those instead."""

    like: int | None = SUNDAY
    entries: tuple[HolidayEntry, ...] = ()


@dataclass(frozen=True)
class OnCallRota:
    """Who is on call: dated exceptions first, then the feed's shifts, then the weekly pattern.

    `holiday_calendar` is the (country, subdivision) whose public holidays `holidays` applies on:
    the practice's calendar (None: no holidays, the weekly pattern applies every day as written)."""

    weekly: tuple[RotaEntry, ...] = ()
    exceptions: tuple[RotaException, ...] = ()
    backup: str | None = None
    until: dt.date | None = None
    shifts: tuple[RotaShift, ...] = ()
    feed: RotaFeed | None = None
    holidays: HolidayCover = HolidayCover()
    holiday_calendar: tuple[str, str | None] | None = None
