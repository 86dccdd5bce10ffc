"""The weekly on-call pattern on public holidays: covered like a Sunday by default, like the day it
falls on, or by the rota's own holiday entries; exceptions and iCalendar shifts stay as written."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.domain import oncall
from callrouter.domain.model import (
    HolidayCover,
    HolidayEntry,
    OnCallRota,
    Period,
    RotaEntry,
    RotaException,
    RotaShift,
    TimeRange,
)

D = dt.datetime
MON_FRI, SAT, SUN = (0, 1, 2, 3, 4), (5,), (6,)


def rng(a: str, b: str) -> TimeRange:
    def minutes(t: str) -> int:
        h, m = t.split(":")
        return int(h) * 60 + int(m)
    return TimeRange(minutes(a), minutes(b))


# A French practice's usual rota: days and nights in the week, the weekend's day and night on call,
# the night after Sunday written as Sunday's (it starts on Sunday).
WEEKLY = (
    RotaEntry(MON_FRI, rng("08:00", "20:00"), "dr-day"),
    RotaEntry(MON_FRI, rng("20:00", "08:00"), "dr-night"),
    RotaEntry(SAT + SUN, rng("08:00", "20:00"), "dr-weekend"),
    RotaEntry(SAT + SUN, rng("20:00", "08:00"), "dr-weekend-night"),
)
PARIS = ("FR", None)
OWN = HolidayCover(like=None, entries=(HolidayEntry(rng("08:00", "20:00"), "dr-holiday"),
                                       HolidayEntry(rng("20:00", "08:00"), "dr-holiday-night")))


def rota(cover: HolidayCover = HolidayCover(), calendar=PARIS, **kw) -> OnCallRota:
    return OnCallRota(WEEKLY, holidays=cover, holiday_calendar=calendar, **kw)


# Wednesday 14 July 2027 (Fête nationale); Friday 26 March 2027 is Good Friday in Alsace-Moselle
# only; Monday 20 December 2027 is the abolition of slavery in La Réunion only.
@pytest.mark.parametrize("cover, calendar, local, expected", [
    (HolidayCover(), PARIS, D(2027, 7, 13, 22), "dr-night"),            # the eve is a weekday night
    (HolidayCover(), PARIS, D(2027, 7, 14, 7, 59), "dr-night"),         # ... which runs to its end
    (HolidayCover(), PARIS, D(2027, 7, 14, 8), "dr-weekend"),           # the holiday: like a Sunday
    (HolidayCover(), PARIS, D(2027, 7, 14, 21), "dr-weekend-night"),
    (HolidayCover(), PARIS, D(2027, 7, 15, 7), "dr-weekend-night"),     # its night ends the next morning
    (HolidayCover(), PARIS, D(2027, 7, 15, 8), "dr-day"),               # back to the week
    (HolidayCover(like=5), PARIS, D(2027, 7, 14, 12), "dr-weekend"),    # like a Saturday
    (HolidayCover(like=None), PARIS, D(2027, 7, 14, 12), "dr-day"),     # usual: the weekday's pattern
    (HolidayCover(like=None), PARIS, D(2027, 7, 14, 21), "dr-night"),
    (OWN, PARIS, D(2027, 7, 14, 7), "dr-night"),
    (OWN, PARIS, D(2027, 7, 14, 12), "dr-holiday"),
    (OWN, PARIS, D(2027, 7, 15, 3), "dr-holiday-night"),
    (HolidayCover(), PARIS, D(2027, 3, 26, 12), "dr-day"),              # Good Friday: not in Paris
    (HolidayCover(), ("FR", "57"), D(2027, 3, 26, 12), "dr-weekend"),   # ... a holiday in Moselle
    (HolidayCover(), ("FR", "974"), D(2027, 12, 20, 12), "dr-weekend"),
    (HolidayCover(), PARIS, D(2027, 12, 20, 12), "dr-day"),
    (HolidayCover(), None, D(2027, 7, 14, 12), "dr-day"),               # no holiday calendar: none
    (HolidayCover(), PARIS, D(2027, 8, 15, 12), "dr-weekend"),          # a Sunday holiday stays a Sunday
], ids=["eve", "eve-night-ends", "holiday-day", "holiday-night", "next-morning", "next-day",
        "like-saturday", "usual-day", "usual-night", "own-eve", "own-day", "own-night",
        "good-friday-paris", "good-friday-moselle", "reunion-20-december", "paris-20-december",
        "no-calendar", "sunday-holiday"])
def test_who_is_on_call_on_a_public_holiday(cover, calendar, local, expected):
    assert oncall.on_call_at(rota(cover, calendar), local) == expected


def test_the_answer_says_which_rule_gave_it():
    got = oncall.on_call(rota(), D(2027, 7, 14, 12))
    assert (got.who, got.rule) == ("dr-weekend", oncall.HOLIDAY)
    assert "Fête nationale" in got.detail and "sun" in got.detail
    assert oncall.on_call(rota(), D(2027, 7, 13, 12)).rule == oncall.WEEKLY
    assert oncall.on_call(rota(OWN), D(2027, 7, 14, 12)).detail.startswith("public holiday (Fête nationale)")


def test_exceptions_and_feed_shifts_win_on_a_holiday_as_written():
    """Dated entries already say who covers that day: the holiday rule changes only the weekly pattern."""
    exc = RotaException(Period(D(2027, 7, 14, 10), D(2027, 7, 14, 12)), "dr-exception")
    shift = RotaShift(Period(D(2027, 7, 14, 12), D(2027, 7, 14, 14)), "dr-feed")
    r = rota(exceptions=(exc,), shifts=(shift,))
    assert oncall.on_call_at(r, D(2027, 7, 14, 11)) == "dr-exception"
    assert oncall.on_call_at(r, D(2027, 7, 14, 13)) == "dr-feed"
    assert oncall.on_call_at(r, D(2027, 7, 14, 15)) == "dr-weekend"   # where the feed is silent
    assert oncall.on_call(r, D(2027, 7, 14, 13)).rule == oncall.FEED
    # a recurring feed event (every Wednesday evening) is not moved or dropped by the holiday rule
    from callrouter.domain.model import Recurrence
    weekly_event = RotaShift(Period(D(2027, 7, 7, 18), D(2027, 7, 7, 20)), "dr-feed", Recurrence("weekly"))
    r = rota(shifts=(weekly_event,))
    assert oncall.on_call_at(r, D(2027, 7, 14, 19)) == "dr-feed"
    assert oncall.on_call_at(r, D(2027, 7, 14, 17)) == "dr-weekend"


def test_until_ends_the_holiday_rule_with_the_weekly_pattern():
    r = rota(OWN, until=dt.date(2027, 7, 13))
    assert oncall.on_call_at(r, D(2027, 7, 14, 12)) is None
    assert oncall.on_call(r, D(2027, 7, 14, 12)).rule == oncall.ENDED


def test_a_monday_morning_written_as_mondays_leaves_the_morning_after_a_holiday_uncovered():
    """The night after a holiday is Sunday's night: a rota writing it as Monday's shows the hole."""
    weekly = (RotaEntry(MON_FRI, rng("08:00", "20:00"), "dr-day"),
              RotaEntry(MON_FRI, rng("20:00", "08:00"), "dr-night"),
              RotaEntry(SUN, rng("00:00", "24:00"), "dr-sunday"),
              RotaEntry((0,), rng("00:00", "08:00"), "dr-sunday"))
    r = OnCallRota(weekly, holiday_calendar=PARIS)
    window = Period(D(2027, 7, 13, 12), D(2027, 7, 15, 12))
    assert oncall.on_call_at(r, D(2027, 7, 14, 7)) == "dr-night"   # Tuesday's night runs to its end
    assert oncall.on_call_at(r, D(2027, 7, 14, 9)) == "dr-sunday"
    assert oncall.holes(r, window) == [Period(D(2027, 7, 15, 0), D(2027, 7, 15, 8))]


def test_who_is_on_call_segment_by_segment():
    segments = oncall.who_when(rota(), Period(D(2027, 7, 13, 12), D(2027, 7, 15, 12)))
    assert [(s.period.start, s.who) for s in segments] == [
        (D(2027, 7, 13, 12), "dr-day"),
        (D(2027, 7, 13, 20), "dr-night"),
        (D(2027, 7, 14, 8), "dr-weekend"),
        (D(2027, 7, 14, 20), "dr-weekend-night"),
        (D(2027, 7, 15, 8), "dr-day"),
    ]
    assert segments[2].rule == oncall.HOLIDAY and segments[-1].period.end == D(2027, 7, 15, 12)


# --- properties ---------------------------------------------------------------------------------

quarters = st.integers(0, 96).map(lambda q: q * 15)
ranges = st.tuples(st.integers(0, 95).map(lambda q: q * 15), quarters).filter(
    lambda r: r[0] != r[1]).map(lambda r: TimeRange(*r))
entries = st.builds(RotaEntry, st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True).map(lambda d: tuple(sorted(d))),
                    ranges, st.sampled_from(["dr-a", "dr-b", "dr-c"]))
covers = st.one_of(
    st.builds(HolidayCover, like=st.one_of(st.none(), st.integers(0, 6))),
    st.builds(HolidayCover, like=st.none(), entries=st.lists(
        st.builds(HolidayEntry, ranges, st.sampled_from(["dr-h", "dr-i"])), min_size=1, max_size=3).map(tuple)),
)
calendars = st.sampled_from([("FR", None), ("FR", "57"), ("FR", "974"), ("FR", "971")])
days_ = st.dates(min_value=dt.date(2026, 1, 1), max_value=dt.date(2029, 12, 31))
times = st.integers(0, 24 * 60 - 1).map(lambda m: dt.time(m // 60, m % 60))


@settings(max_examples=200, deadline=None)
@given(weekly=st.lists(entries, max_size=5).map(tuple), cover=covers, cal=calendars, day=days_, at=times)
def test_the_holiday_rule_changes_nothing_away_from_holidays(weekly, cover, cal, day, at):
    """Off a holiday and its morning after, the answer is the plain weekly pattern's; `usual` never
    changes it."""
    with_rule = OnCallRota(weekly, holidays=cover, holiday_calendar=cal)
    plain = OnCallRota(weekly)
    local = D.combine(day, at)
    near_holiday = any(oncall.holiday_name(with_rule, day - dt.timedelta(days=k)) for k in (0, 1))
    if not near_holiday or (cover.like is None and not cover.entries):
        assert oncall.on_call_at(with_rule, local) == oncall.on_call_at(plain, local)


@settings(max_examples=200, deadline=None)
@given(weekly=st.lists(entries, max_size=5).map(tuple), cover=covers, cal=calendars, day=days_,
       span_h=st.integers(1, 24 * 10), probes=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=10))
def test_segments_partition_the_window_and_agree_with_every_instant(weekly, cover, cal, day, span_h, probes):
    r = OnCallRota(weekly, holidays=cover, holiday_calendar=cal)
    window = Period(D.combine(day, dt.time()), D.combine(day, dt.time()) + dt.timedelta(hours=span_h))
    segments = oncall.who_when(r, window)
    assert segments[0].period.start == window.start and segments[-1].period.end == window.end
    for a, b in zip(segments, segments[1:]):
        assert a.period.end == b.period.start and (a.who, a.rule, a.detail) != (b.who, b.rule, b.detail)
    holes = oncall.holes(r, window)
    for p in probes:
        t = window.start + dt.timedelta(minutes=int(span_h * 60 * p))
        seg = next(s for s in segments if s.period.contains(t))
        assert seg.who == oncall.on_call_at(r, t), t
        assert any(h.contains(t) for h in holes) == (seg.who is None)


def test_the_forecast_does_not_repeat_for_each_holiday_that_the_rota_has_ended(tmp_path):
    from callrouter.domain import timeline
    from tests.factories import dialplan_text, load_one

    plan = load_one(tmp_path, dialplan_text(extra='on_call:\n  until: 2027-07-01\n  weekly:\n'
                                                  '    - {days: daily, hours: "00:00-24:00", who: dr-a}'))
    start = dt.datetime(2027, 6, 25, tzinfo=dt.timezone.utc)
    end = start + dt.timedelta(days=30)
    kinds = [w.kind for w in timeline.warnings(plan, timeline.timeline(plan, start, end), start, end)]
    assert "rota_ends" in kinds and "holiday_no_on_call" not in kinds


def test_escalation_reaches_the_holiday_cover_of_a_loaded_dialplan(tmp_path):
    """The live path: a step to `on_call` on 14 July reaches the Sunday practitioner, in Paris time."""
    from callrouter.domain import escalation
    from callrouter.domain.model import EscalationStep
    from tests.factories import dialplan_text, load_one

    text = dialplan_text(extra='on_call:\n  weekly:\n'
                               '    - {days: mon-fri, hours: "08:00-20:00", who: dr-a}\n'
                               '    - {days: sun, hours: "08:00-20:00", who: dr-b}')
    text = text.replace('  - {id: dr-a, name: Dr A, phone: "+33600000001"}',
                        '  - {id: dr-a, name: Dr A, phone: "+33600000001"}\n'
                        '  - {id: dr-b, name: Dr B, phone: "+33600000002"}')
    plan = load_one(tmp_path, text)
    step = EscalationStep("sms", "on_call")
    noon_utc = dt.datetime(2027, 7, 14, 10, tzinfo=dt.timezone.utc)  # 12:00 in Paris
    assert escalation.resolve(step, 0, 0, plan, noon_utc).practitioner == "dr-b"
    assert escalation.resolve(step, 0, 0, plan, noon_utc - dt.timedelta(days=1)).practitioner == "dr-a"
