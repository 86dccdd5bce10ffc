"""When a practice's weekly report is due: pure, the time is an argument.

The report of ISO week W (Monday to Sunday, local days) is due at the first `weekday` and
`minute` of the practice's subscription at or after the end of W: `monday 07:00` sends it the
next morning, `friday 17:00` on the Friday after. At any instant the week to send is the latest
one already due, for `CATCH_UP` after it is due: a node that was down on the day sends it when it
comes back within that time; later, that week is left unsent (the next one comes a week later,
rather than two reports within minutes of each other).

Local times are read in the practice's zone: a time skipped by the spring clock change is taken
an hour later, one repeated in autumn at its first occurrence.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from callrouter.domain.model import ReportSubscription

CATCH_UP = dt.timedelta(days=3)


def due_at(subscription: ReportSubscription, zone: ZoneInfo, year: int, week: int) -> dt.datetime | None:
    """When the report of ISO week (year, week) is due, in UTC (None: no weekly e-mail)."""
    if subscription.weekday is None:
        return None
    next_monday = dt.date.fromisocalendar(year, week, 1) + dt.timedelta(days=7)
    day = next_monday + dt.timedelta(days=subscription.weekday)
    hour, minute = divmod(subscription.minute, 60)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone).astimezone(dt.timezone.utc)


def due_week(subscription: ReportSubscription, zone: ZoneInfo, now: dt.datetime) -> tuple[int, int] | None:
    """The ISO (year, week) whose report is to be sent at `now`: the latest one due, if it was due
    less than `CATCH_UP` ago; None otherwise, or without a weekly e-mail."""
    if subscription.weekday is None:
        return None
    today = now.astimezone(zone).date()
    for back in (1, 2):
        year, week, _ = (today - dt.timedelta(days=7 * back)).isocalendar()
        due = due_at(subscription, zone, year, week)
        if due is not None and due <= now:
            return (year, week) if now < due + CATCH_UP else None
    return None  # pragma: no cover - the week before last is always due
