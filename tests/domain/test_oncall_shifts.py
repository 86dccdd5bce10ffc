"""Dated and recurring on-call shifts (from iCalendar feeds) in the pure rota: who is on call, holes."""

import datetime as dt

import pytest

from callrouter.domain.model import OnCallRota, Period, Recurrence, RotaEntry, RotaException, RotaShift, TimeRange
from callrouter.domain.oncall import holes, nth_start, occurrences, on_call_at

D = dt.datetime


def shift(start, end, who="dr-a", **rec):
    return RotaShift(Period(start, end), who, Recurrence(**rec) if rec else None)


# Mondays and Wednesdays 19:00 -> 08:00 next day, every other week, from Monday 2026-11-23.
NIGHTS = shift(D(2026, 11, 23, 19), D(2026, 11, 24, 8), freq="weekly", interval=2, days=(0, 2))


@pytest.mark.parametrize("local, expected", [
    (D(2026, 11, 23, 18, 59), None),
    (D(2026, 11, 23, 19, 0), "dr-a"),
    (D(2026, 11, 24, 7, 59), "dr-a"),    # the night goes on past midnight
    (D(2026, 11, 24, 8, 0), None),
    (D(2026, 11, 25, 23, 0), "dr-a"),    # Wednesday of the same week
    (D(2026, 11, 30, 20, 0), None),      # the week after: INTERVAL=2
    (D(2026, 12, 7, 20, 0), "dr-a"),
    (D(2026, 12, 10, 3, 0), "dr-a"),     # Wednesday night, early Thursday
], ids=["before", "start", "after-midnight", "end", "wednesday", "odd-week", "even-week", "thursday-early"])
def test_weekly_interval_and_days(local, expected):
    assert on_call_at(OnCallRota(shifts=(NIGHTS,)), local) == expected


def test_week_start_changes_which_weeks_count():
    # Sundays and Mondays every other week from Sunday 2026-11-22: with weeks starting on Monday,
    # Monday 23 is already the next week (skipped); starting on Sunday it is the same week.
    base = dict(freq="weekly", interval=2, days=(6, 0))
    mo = shift(D(2026, 11, 22, 9), D(2026, 11, 22, 10), week_start=0, **base)
    su = shift(D(2026, 11, 22, 9), D(2026, 11, 22, 10), week_start=6, **base)
    assert on_call_at(OnCallRota(shifts=(mo,)), D(2026, 11, 23, 9, 30)) is None
    assert on_call_at(OnCallRota(shifts=(su,)), D(2026, 11, 23, 9, 30)) == "dr-a"


def test_exdates_and_until():
    rota = OnCallRota(shifts=(shift(D(2026, 11, 23, 19), D(2026, 11, 24, 8), freq="daily",
                                    until=D(2026, 11, 26, 19), exdates=frozenset({D(2026, 11, 25, 19)})),))
    assert on_call_at(rota, D(2026, 11, 24, 20)) == "dr-a"
    assert on_call_at(rota, D(2026, 11, 25, 20)) is None       # excluded
    assert on_call_at(rota, D(2026, 11, 26, 20)) == "dr-a"     # the last start is included
    assert on_call_at(rota, D(2026, 11, 27, 20)) is None


def test_count_becomes_the_last_start_and_excluded_dates_still_count():
    s = shift(D(2026, 11, 23, 19), D(2026, 11, 24, 8), freq="daily", exdates=frozenset({D(2026, 11, 24, 19)}))
    assert nth_start(s, 3) == D(2026, 11, 25, 19)
    assert [p.start.day for p in occurrences(s, dt.date(2026, 11, 1), dt.date(2026, 11, 26))] == [23, 25, 26]


def test_a_recurring_night_keeps_its_wall_clock_times_across_the_clock_changes():
    # Saturday 19:00 -> Sunday 08:00 every week; clocks go forward on 2027-03-28, back on 2027-10-31.
    sat = shift(D(2027, 3, 20, 19), D(2027, 3, 21, 8), freq="weekly")
    rota = OnCallRota(shifts=(sat,))
    for night in (dt.date(2027, 3, 27), dt.date(2027, 10, 30)):
        sunday = night + dt.timedelta(days=1)
        assert on_call_at(rota, D.combine(sunday, dt.time(7, 59))) == "dr-a"
        assert on_call_at(rota, D.combine(sunday, dt.time(8, 0))) is None
        window = Period(D.combine(night, dt.time(12)), D.combine(sunday, dt.time(12)))
        assert holes(rota, window) == [Period(window.start, D.combine(night, dt.time(19))),
                                       Period(D.combine(sunday, dt.time(8)), window.end)]


def test_exceptions_win_over_shifts_which_win_over_the_weekly_pattern():
    weekly = (RotaEntry(tuple(range(7)), TimeRange(19 * 60, 8 * 60), "dr-weekly"),)
    shifts = (shift(D(2026, 12, 24, 19), D(2026, 12, 26, 8), who="dr-feed"),
              shift(D(2026, 12, 31, 19), D(2027, 1, 1, 8), who=None))  # a declared hole in the feed
    exceptions = (RotaException(Period(D(2026, 12, 25, 12), D(2026, 12, 25, 14)), "dr-exception"),)
    rota = OnCallRota(weekly, exceptions, shifts=shifts, until=dt.date(2026, 12, 20))
    assert on_call_at(rota, D(2026, 12, 19, 22)) == "dr-weekly"
    assert on_call_at(rota, D(2026, 12, 22, 22)) is None               # the weekly pattern has ended
    assert on_call_at(rota, D(2026, 12, 25, 10)) == "dr-feed"          # shifts are dated: until does not cut them
    assert on_call_at(rota, D(2026, 12, 25, 13)) == "dr-exception"
    assert on_call_at(rota, D(2026, 12, 31, 22)) is None
    rota = OnCallRota(weekly, shifts=shifts)
    assert on_call_at(rota, D(2026, 12, 31, 22)) is None and on_call_at(rota, D(2026, 12, 30, 22)) == "dr-weekly"


def test_holes_between_feed_shifts():
    rota = OnCallRota(shifts=(NIGHTS,))
    window = Period(D(2026, 11, 23, 0), D(2026, 11, 26, 0))
    assert holes(rota, window) == [Period(D(2026, 11, 23, 0), D(2026, 11, 23, 19)),
                                   Period(D(2026, 11, 24, 8), D(2026, 11, 25, 19))]


def test_an_all_day_shift_covers_whole_days():
    rota = OnCallRota(shifts=(shift(D(2026, 12, 24), D(2026, 12, 27), who="dr-b"),))
    assert on_call_at(rota, D(2026, 12, 24, 0)) == "dr-b" and on_call_at(rota, D(2026, 12, 26, 23, 59)) == "dr-b"
    assert on_call_at(rota, D(2026, 12, 27, 0)) is None
