"""Periods of local days (callrouter.domain.kpis): a day is midnight to midnight in the practice's
time zone (23 or 25 hours on a DST day), a week runs from Monday (ISO weeks), a month from its 1st.
Pure: the zone is an argument."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Period:
    """Local days `start` (included) to `end` (excluded)."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"a period ends after it starts: {self.start} .. {self.end}")

    @classmethod
    def day(cls, day: dt.date) -> "Period":
        return cls(day, day + dt.timedelta(days=1))

    @classmethod
    def iso_week(cls, year: int, week: int) -> "Period":
        monday = dt.date.fromisocalendar(year, week, 1)
        return cls(monday, monday + dt.timedelta(days=7))

    @classmethod
    def month(cls, year: int, month: int) -> "Period":
        return cls(dt.date(year, month, 1), dt.date(year + month // 12, month % 12 + 1, 1))

    @classmethod
    def today(cls, now: dt.datetime, zone: dt.tzinfo) -> "Period":
        return cls.day(now.astimezone(zone).date())

    def days(self) -> list["Period"]:
        return [Period.day(self.start + dt.timedelta(days=i)) for i in range((self.end - self.start).days)]

    def bounds(self, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
        """The UTC instants of its first local midnight and of the midnight after its last day."""
        return midnight(self.start, zone), midnight(self.end, zone)

    def to_json(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def midnight(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.timezone.utc)


def within(t: dt.datetime | None, bounds: tuple[dt.datetime, dt.datetime]) -> bool:
    return t is not None and bounds[0] <= t < bounds[1]
