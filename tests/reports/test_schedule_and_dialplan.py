"""The dialplan's `reports` section (checked with file, line and reason like the rest of the
loader), when a weekly report is due (pure; property-tested across the clock changes), and the
French way numbers, durations and dates are written."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st

from callrouter.dialplan.loader import load_paths
from callrouter.domain.kpis import Period, Rate
from callrouter.domain.model import ReportSubscription
from callrouter.reports import words
from callrouter.reports.schedule import CATCH_UP, due_at, due_week
from tests.reports import seed as S

PARIS = ZoneInfo("Europe/Paris")
BASE = S.DIALPLAN.split("reports:")[0]


def load(tmp_path, reports: str):
    path = tmp_path / "cab.yaml"
    path.write_text(BASE + reports, encoding="utf-8")
    result = load_paths([path])
    return (result.dialplans[0] if result.dialplans else None), sorted(
        str(e).replace(str(tmp_path) + "/", "") for e in result.errors)


def test_the_reports_section_names_the_contacts_and_the_weekly_time(tmp_path):
    plan, errors = load(tmp_path, "reports:\n  email: cabinet@example.fr\n")
    assert errors == [] and plan.reports == ReportSubscription(("cabinet@example.fr",), 0, 7 * 60)
    plan, _ = load(tmp_path, "reports:\n  email: [a@example.fr, b@example.fr]\n  weekly: fri 17:30\n")
    assert plan.reports == ReportSubscription(("a@example.fr", "b@example.fr"), 4, 17 * 60 + 30)
    plan, _ = load(tmp_path, "reports:\n  email: a@example.fr\n  weekly: off\n")
    assert plan.reports.weekday is None
    plan, _ = load(tmp_path, "")
    assert plan.reports is None


def test_a_bad_reports_section_is_refused_with_file_line_and_reason(tmp_path):
    line = BASE.count("\n") + 1  # where "reports:" is
    plan, errors = load(tmp_path, "reports:\n  email: [cabinet@example.fr, 'pas une adresse', Cabinet@example.fr]\n"
                                  "  weekly: mondy 07:00\n  cc: x@example.fr\n")
    assert plan is None
    assert errors == sorted([
        f'cab.yaml:{line + 1}: reports.email[1]: "pas une adresse" is not an e-mail address (such as cabinet@example.fr)',
        f'cab.yaml:{line + 1}: reports.email[2]: "Cabinet@example.fr" is listed twice',
        f'cab.yaml:{line + 2}: reports.weekly: "mondy" is not a day (did you mean "monday"?); use monday ... sunday '
        f"(or mon ... sun)",
        f'cab.yaml:{line + 3}: reports.cc: unknown key "cc"; allowed here: email, weekly',
    ])
    _, errors = load(tmp_path, "reports:\n  weekly: monday 25:00\n")
    assert errors == sorted([f'cab.yaml:{line + 1}: reports: missing required key "email"',
                             f'cab.yaml:{line + 1}: reports.weekly: "25:00" is not a valid time of day'])
    _, errors = load(tmp_path, "reports:\n  email: a@example.fr\n  weekly: monday\n")
    assert errors == [f'cab.yaml:{line + 2}: reports.weekly: "monday" is not a day and a time; write e.g. '
                      f'"monday 07:00", "mon 07:00" or off']
    _, errors = load(tmp_path, "reports:\n  email: a@example.fr\n  weekly: every monday\n")
    assert errors == [f'cab.yaml:{line + 2}: reports.weekly: "every" is not a day; use monday ... sunday (or mon ... sun)']


MONDAY_7 = ReportSubscription(("a@example.fr",), 0, 7 * 60)


def test_the_report_of_a_week_is_due_the_next_monday_at_seven_local_time():
    assert due_at(MONDAY_7, PARIS, 2026, 13) == dt.datetime(2026, 3, 30, 5, 0, tzinfo=dt.timezone.utc)  # UTC+2
    assert due_at(MONDAY_7, PARIS, 2026, 12) == dt.datetime(2026, 3, 23, 6, 0, tzinfo=dt.timezone.utc)  # UTC+1
    at = dt.datetime(2026, 3, 30, 5, 0, tzinfo=dt.timezone.utc)
    assert due_week(MONDAY_7, PARIS, at - dt.timedelta(seconds=1)) is None  # week 12 is past its catch-up
    assert due_week(MONDAY_7, PARIS, at) == (2026, 13)
    assert due_week(MONDAY_7, PARIS, at + CATCH_UP - dt.timedelta(seconds=1)) == (2026, 13)
    assert due_week(MONDAY_7, PARIS, at + CATCH_UP) is None
    sunday_2_30 = ReportSubscription(("a@example.fr",), 6, 2 * 60 + 30)  # skipped by the spring clock change
    assert due_at(sunday_2_30, PARIS, 2026, 12).astimezone(PARIS).hour == 3
    assert due_week(ReportSubscription(("a@example.fr",), None), PARIS, at) is None


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2028, 12, 31),
                    timezones=st.just(dt.timezone.utc)),
       st.integers(0, 6), st.integers(0, 24 * 60 - 1),
       st.sampled_from(["Europe/Paris", "Indian/Reunion", "America/Cayenne", "Pacific/Noumea"]))
def test_the_week_due_is_a_full_past_week_whose_time_has_come_within_the_catch_up(now, weekday, minute, zone):
    subscription, tz = ReportSubscription(("a@example.fr",), weekday, minute), ZoneInfo(zone)
    week = due_week(subscription, tz, now)
    if week is None:
        return
    due = due_at(subscription, tz, *week)
    assert due <= now < due + CATCH_UP
    assert Period.iso_week(*week).end <= now.astimezone(tz).date()  # a week that has ended


def test_french_numbers_durations_and_dates():
    assert words.rate(Rate(4, 8)) == "4/8 (50\u202f%)" and words.rate(Rate(0, 0)) == "-"
    assert words.percent(2 / 3, 1) == "66,7\u202f%" and words.number(12345) == "12\u202f345"
    assert [words.seconds(s) for s in (None, 8, 60, 90, 3725)] == ["-", "8\u00a0s", "1\u00a0min", "1\u00a0min\u00a030\u00a0s",
                                                                  "1\u00a0h\u00a002\u00a0min"]
    assert words.day(dt.date(2026, 3, 1)) == "dimanche 1er mars 2026"
    assert words.period(Period.iso_week(2026, 13)) == "du lundi 23 mars au dimanche 29 mars 2026"
    assert words.period(Period(dt.date(2025, 12, 29), dt.date(2026, 1, 5))) == \
        "du lundi 29 décembre 2025 au dimanche 4 janvier 2026"
    assert words.period(Period.day(dt.date(2026, 8, 15))) == "le samedi 15 août 2026"
    assert words.tier("vital") == "Urgence vitale" and words.tier("same_day") == "Same day"
