"""Times of the dialplan: weekdays, daily time ranges (minutes since local midnight), dated local
periods and weekly hours. Frozen values, no I/O; model.py names them too."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class TimeRange:
    """A daily range [start, end) in minutes since midnight; end <= start means it crosses midnight."""

    start: int
    end: int

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Period:
    """A dated local period [start, end), naive local wall-clock times."""

    start: dt.datetime
    end: dt.datetime

    def contains(self, local: dt.datetime) -> bool:
        return self.start <= local < self.end


@dataclass(frozen=True)
class WeeklyHours:
    """Ranges per weekday, Monday first (index = datetime.weekday())."""

    days: tuple[tuple[TimeRange, ...], ...] = ((),) * 7

    def is_empty(self) -> bool:
        return not any(self.days)
