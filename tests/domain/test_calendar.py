"""Calendar: hours, holidays per subdivision, closures, openings, midnight and DST."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from callrouter.domain import calendar
from callrouter.domain.calendar import CLOSED, CLOSURE, HOLIDAY, OPEN
from tests.factories import dialplan_text, load_one

PARIS = ZoneInfo("Europe/Paris")


def at(y, m, d, hh=10, mm=0, tz=PARIS):
    return dt.datetime(y, m, d, hh, mm, tzinfo=tz)


@pytest.mark.parametrize("subdivision, day, expected", [
    (None, dt.date(2027, 3, 26), None),            # Good Friday 2027: not in Paris
    ("57", dt.date(2027, 3, 26), "Vendredi saint"),  # ... but in Moselle
    ("67", dt.date(2027, 3, 26), "Vendredi saint"),  # ... and Bas-Rhin
    ("68", dt.date(2026, 12, 26), "Saint-Étienne"),
    (None, dt.date(2026, 12, 26), None),
    ("974", dt.date(2026, 12, 20), "Abolition de l'esclavage"),  # La Réunion
    ("972", dt.date(2027, 5, 22), "Abolition de l'esclavage"),   # Martinique
    ("971", dt.date(2027, 5, 27), "Abolition de l'esclavage"),   # Guadeloupe
    ("973", dt.date(2027, 6, 10), "Abolition de l'esclavage"),   # Guyane
    ("976", dt.date(2027, 4, 27), "Abolition de l'esclavage"),   # Mayotte
    (None, dt.date(2030, 4, 22), "Lundi de Pâques"),  # movable feasts computed for any year
    (None, dt.date(2031, 5, 22), "Ascension"),
    (None, dt.date(2035, 5, 14), "Lundi de Pentecôte"),
])
def test_public_holidays_by_subdivision(subdivision, day, expected):
    sub = calendar.canonical_subdivision("FR", subdivision)
    assert calendar.holidays_for("FR", sub, day.year).get(day) == expected


def spec(tmp_path, hours='  mon-fri: ["08:00-12:00", "14:00-18:00"]', cal="", tz="Europe/Paris"):
    return load_one(tmp_path, dialplan_text(hours=hours, calendar=cal, timezone=tz)).calendar


@pytest.mark.parametrize("when, status, rule", [
    (at(2026, 11, 23, 7, 59), CLOSED, "after_hours"),
    (at(2026, 11, 23, 8, 0), OPEN, "hours"),
    (at(2026, 11, 23, 11, 59), OPEN, "hours"),
    (at(2026, 11, 23, 12, 0), CLOSED, "after_hours"),  # lunch break, end exclusive
    (at(2026, 11, 23, 14, 0), OPEN, "hours"),
    (at(2026, 11, 28, 10, 0), CLOSED, "after_hours"),  # Saturday
    (at(2026, 11, 11, 10, 0), HOLIDAY, "holiday"),     # Armistice, a Wednesday
])
def test_weekly_hours_and_holidays(tmp_path, when, status, rule):
    state = calendar.state_at(spec(tmp_path), when)
    assert (state.status, state.rule) == (status, rule)


def test_range_crossing_midnight_belongs_to_its_start_day(tmp_path):
    s = spec(tmp_path, hours='  fri: ["20:00-02:00"]')
    assert calendar.state_at(s, at(2026, 11, 27, 23, 30)).status == OPEN   # Friday night
    assert calendar.state_at(s, at(2026, 11, 28, 1, 59)).status == OPEN    # Saturday small hours
    assert calendar.state_at(s, at(2026, 11, 28, 2, 0)).status == CLOSED
    assert calendar.state_at(s, at(2026, 11, 27, 1, 0)).status == CLOSED   # Thursday's night: not listed


def test_holiday_on_a_weekend_is_still_the_holiday(tmp_path):
    s = spec(tmp_path, hours='  daily: ["00:00-24:00"]')
    assert calendar.state_at(s, at(2026, 11, 1, 10)).status == HOLIDAY  # Toussaint 2026 is a Sunday


def test_closure_over_a_holiday_wins_and_opening_wins_over_closure(tmp_path):
    cal = """  closures:
    - {from: 2026-12-24, to: 2026-12-31, reason: fermeture annuelle}
  openings:
    - {date: 2026-12-28, hours: "09:00-12:00", reason: permanence}"""
    s = spec(tmp_path, cal=cal)
    xmas = calendar.state_at(s, at(2026, 12, 25, 10))
    assert xmas.status == CLOSURE and "fermeture annuelle" in xmas.detail
    assert calendar.state_at(s, at(2026, 12, 28, 10)).status == OPEN
    assert calendar.state_at(s, at(2026, 12, 28, 12)).status == CLOSURE
    assert calendar.state_at(s, at(2026, 12, 31, 23, 59)).status == CLOSURE
    assert calendar.state_at(s, at(2027, 1, 1, 10)).status == HOLIDAY
    assert calendar.state_at(s, at(2027, 1, 4, 10)).status == OPEN


def test_closure_with_times_crosses_midnight(tmp_path):
    s = spec(tmp_path, hours='  daily: ["00:00-24:00"]',
             cal="  closures:\n    - {from: 2026-11-24T22:00, to: 2026-11-25T06:30, reason: maintenance}")
    assert calendar.state_at(s, at(2026, 11, 24, 21, 59)).status == OPEN
    assert calendar.state_at(s, at(2026, 11, 25, 3, 0)).status == CLOSURE
    assert calendar.state_at(s, at(2026, 11, 25, 6, 30)).status == OPEN


def test_state_follows_local_time_across_dst(tmp_path):
    """08:00 local is 07:00 UTC in winter and 06:00 UTC in summer."""
    s = spec(tmp_path, hours='  daily: ["08:00-12:00"]')
    utc = dt.timezone.utc
    assert calendar.state_at(s, dt.datetime(2027, 3, 27, 7, 0, tzinfo=utc)).status == OPEN    # Sat, CET
    assert calendar.state_at(s, dt.datetime(2027, 3, 28, 6, 30, tzinfo=utc)).status == OPEN   # DST day, CEST
    assert calendar.state_at(s, dt.datetime(2027, 3, 28, 5, 30, tzinfo=utc)).status == CLOSED
    assert calendar.state_at(s, dt.datetime(2026, 10, 25, 6, 59, tzinfo=utc)).status == CLOSED  # back to CET
    assert calendar.state_at(s, dt.datetime(2026, 10, 25, 7, 0, tzinfo=utc)).status == OPEN


def test_naive_time_is_refused(tmp_path):
    with pytest.raises(ValueError):
        calendar.state_at(spec(tmp_path), dt.datetime(2026, 11, 23, 10))


def test_offset_changes_are_found_to_the_minute():
    utc = dt.timezone.utc
    changes = calendar.offset_changes("Europe/Paris", dt.datetime(2027, 1, 1, tzinfo=utc), dt.datetime(2027, 12, 31, tzinfo=utc))
    assert changes == [dt.datetime(2027, 3, 28, 1, 0, tzinfo=utc), dt.datetime(2027, 10, 31, 1, 0, tzinfo=utc)]
    assert calendar.offset_changes("Indian/Reunion", changes[0], changes[1]) == []
