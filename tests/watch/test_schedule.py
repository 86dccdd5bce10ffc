"""The watch's schedule, pure, with the time given: local windows across the changes of time, calls
only while the practice is not open when it forwards only then, the daily budget, a number never
called twice at once, and every node computing the same plan."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callrouter.domain import calendar, watch
from callrouter.domain.watch_spec import ALWAYS, CLOSED, NO_ANSWER, WatchedNumber, WatchSpec, WatchWindow
from tests.factories import dialplan_text, load_one

UTC = dt.timezone.utc
PARIS = ZoneInfo("Europe/Paris")
SPRING = dt.date(2026, 3, 29)  # 02:00 -> 03:00 in Paris
AUTUMN = dt.date(2026, 10, 25)  # 03:00 -> 02:00 in Paris
ONE = (WatchedNumber("+33100000001", "+33100000001"),)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A practice open Monday to Friday 08:00-12:00 and 14:00-18:00 (tests/factories.py)."""
    return load_one(tmp_path_factory.mktemp("watch"), dialplan_text())


def with_watch(base, forwarding=ALWAYS, windows=(WatchWindow(190, 205),), numbers=ONE, timeout=30.0, retry=300.0,
               cap=4, timezone=None):
    spec = WatchSpec(forwarding, numbers, windows, timeout, retry, cap)
    dialplan = dataclasses.replace(base, watch=spec)
    if timezone:
        dialplan = dataclasses.replace(dialplan, calendar=dataclasses.replace(base.calendar, timezone=timezone))
    return dialplan


def local_days(first: dt.date, count: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(first, dt.time(), tzinfo=PARIS).astimezone(UTC)
    end = dt.datetime.combine(first + dt.timedelta(days=count), dt.time(), tzinfo=PARIS).astimezone(UTC)
    return start, end


def test_a_nightly_watch_stays_at_its_local_time_across_both_changes_of_time(base):
    plan = with_watch(base)
    for first in (SPRING - dt.timedelta(days=2), AUTUMN - dt.timedelta(days=2)):
        watches = watch.plan(plan, *local_days(first, 5), cap=4)
        assert [w.at.astimezone(PARIS).date() for w in watches] == [first + dt.timedelta(days=i) for i in range(5)]
        for w in watches:
            local = w.at.astimezone(PARIS)
            assert dt.time(3, 10) <= local.time() < dt.time(3, 25), local
        offsets = {w.at.astimezone(PARIS).utcoffset() for w in watches}
        assert offsets == {dt.timedelta(hours=1), dt.timedelta(hours=2)}  # the same local time, two UTC times


def test_a_window_inside_the_spring_jump_is_skipped_that_day_only(base):
    plan = with_watch(base, windows=(WatchWindow(120, 180),))  # 02:00-03:00 does not exist on 29 March
    days = [w.at.astimezone(PARIS).date() for w in watch.plan(plan, *local_days(SPRING - dt.timedelta(days=1), 3), 4)]
    assert days == [SPRING - dt.timedelta(days=1), SPRING + dt.timedelta(days=1)]


def test_a_window_in_the_hour_lived_twice_in_autumn_runs_once(base):
    plan = with_watch(base, windows=(WatchWindow(120, 180),))  # 02:00-03:00 happens twice on 25 October
    watches = watch.plan(plan, *local_days(AUTUMN, 1), 4)
    assert len(watches) == 1
    w = watches[0]
    # The window runs from the first 02:00 (CEST) to 03:00 (CET): two hours of real time.
    assert w.window_start == dt.datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    assert w.window_end == dt.datetime(2026, 10, 25, 2, 0, tzinfo=UTC)


def test_hourly_windows_are_cut_to_the_budget_and_spread_over_the_day(base):
    plan = with_watch(base, windows=tuple(WatchWindow(h * 60, h * 60 + 60) for h in range(24)), cap=4)
    watches = watch.plan(plan, *local_days(dt.date(2026, 6, 3), 1), 4)
    assert [w.at.astimezone(PARIS).hour for w in watches] == [0, 12]  # two runs (each may retry), spread


def test_closed_forwarding_calls_only_while_the_practice_is_not_open(base):
    plan = with_watch(base, forwarding=CLOSED, windows=tuple(WatchWindow(h * 60, h * 60 + 60) for h in range(24)),
                      cap=48)
    watches = watch.plan(plan, *local_days(dt.date(2026, 6, 1), 7), 48)  # a Monday, a whole week
    hours = {(w.at.astimezone(PARIS).weekday(), w.at.astimezone(PARIS).hour) for w in watches}
    assert not any(day < 5 and (8 <= hour < 12 or 14 <= hour < 18) for day, hour in hours)
    assert (0, 12) in hours or (0, 13) in hours  # the lunch break is closed
    assert {(5, 10), (6, 10)} <= hours  # and the weekend
    for w in watches:  # nor in its retry's span
        end = w.at + watch.span(plan.watch)
        assert calendar.state_at(plan.calendar, end).status != calendar.OPEN


def test_a_call_whose_retry_would_ring_once_open_is_not_planned(base):
    # 07:50-08:00 on a Monday: the call fits, its retry five minutes later would not.
    plan = with_watch(base, forwarding=NO_ANSWER, windows=(WatchWindow(470, 480),), timeout=60.0)
    assert watch.plan(plan, *local_days(dt.date(2026, 6, 1), 1), 4) == []
    saturday = watch.plan(plan, *local_days(dt.date(2026, 6, 6), 1), 4)
    assert len(saturday) == 1


def test_many_practices_with_one_window_do_not_all_call_at_once(base):
    minutes = set()
    for i in range(20):
        plan = dataclasses.replace(with_watch(base, windows=(WatchWindow(180, 240),)), practice=f"cabinet-{i}")
        [w] = watch.plan(plan, *local_days(dt.date(2026, 6, 1), 1), 4)
        minutes.add(w.at.astimezone(PARIS).strftime("%H:%M"))
    assert len(minutes) >= 12


def test_the_plan_is_the_same_whoever_computes_it_and_whatever_range_asks(base):
    plan = with_watch(base, windows=(WatchWindow(190, 205), WatchWindow(780, 840)))
    start, end = local_days(dt.date(2026, 6, 1), 3)
    whole = watch.plan(plan, start, end, 4)
    middle = start + dt.timedelta(hours=37, minutes=13)
    assert watch.plan(plan, start, middle, 4) + watch.plan(plan, middle, end, 4) == whole
    assert [w.key for w in whole] == [w.key for w in watch.plan(plan, start, end, 4)]
    assert len({w.key for w in whole}) == len(whole)


# --- properties ---------------------------------------------------------------------------------------

windows = st.lists(st.tuples(st.integers(0, 1439), st.integers(1, 300)).map(
    lambda t: WatchWindow(t[0], min(1440, t[0] + t[1]))), min_size=1, max_size=6)
numbers = st.lists(st.sampled_from(["+33100000001", "+33100000002", "+33100000003"]), min_size=1, max_size=3,
                   unique=True).map(lambda ns: tuple(WatchedNumber(n, n) for n in ns))
zones = st.sampled_from(["Europe/Paris", "Indian/Reunion", "America/Cayenne", "Pacific/Noumea"])
starts = st.datetimes(min_value=dt.datetime(2026, 3, 20), max_value=dt.datetime(2026, 11, 5)).map(
    lambda d: d.replace(tzinfo=UTC))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(windows=windows, numbers=numbers, forwarding=st.sampled_from([ALWAYS, CLOSED, NO_ANSWER]),
       cap=st.integers(2, 12), zone=zones, start=starts, days=st.integers(1, 6), cut=st.floats(0, 1))
def test_every_plan_keeps_the_rules(base, windows, numbers, forwarding, cap, zone, start, days, cut):
    plan = with_watch(base, forwarding, tuple(windows), numbers, cap=cap, timezone=zone)
    end = start + dt.timedelta(days=days)
    watches = watch.plan(plan, start, end, cap)
    spec = plan.watch
    for w in watches:
        assert start <= w.at < end and w.window_start <= w.at < w.window_end
        if forwarding != ALWAYS:
            assert calendar.state_at(plan.calendar, w.at).status != calendar.OPEN
    per_day: dict[dt.date, int] = {}
    last: dict[str, dt.datetime] = {}
    for w in watches:  # in time order
        day = calendar.local_time(zone, w.at).date()
        per_day[day] = per_day.get(day, 0) + 1
        if w.number.call in last:  # one number is never called twice at once, retry included
            assert w.at - last[w.number.call] >= watch.span(spec)
        last[w.number.call] = w.at
    assert all(n <= cap // 2 for n in per_day.values())
    middle = start + (end - start) * cut
    assert watch.plan(plan, start, middle, cap) + watch.plan(plan, middle, end, cap) == watches


# --- verdicts and numbers -------------------------------------------------------------------------------

@pytest.mark.parametrize("seen, outcome", [
    ({"returned": True, "end_code": 486}, watch.PASSED),
    ({"answered": True, "rang": True}, watch.ANSWERED),
    ({"end_code": 486}, watch.BUSY),
    ({"end_code": 603}, watch.BUSY),
    ({"end_code": 480, "rang": True}, watch.UNANSWERED),
    ({"rang": True}, watch.UNANSWERED),          # the limit, after ringing
    ({}, watch.NO_RETURN),                       # the limit, nothing at all
    ({"end_code": 404}, watch.REFUSED),
    ({"end_code": 503}, watch.REFUSED),
    ({"end_code": 486, "by": "worker"}, watch.NOT_PLACED),
])
def test_what_an_attempt_came_to(seen, outcome):
    assert watch.attempt_outcome(**seen) == outcome


def test_a_failure_is_tried_once_more_then_fails():
    assert watch.after_attempt([watch.PASSED]) == watch.PASSED
    assert watch.after_attempt([watch.BUSY]) == watch.RETRY
    assert watch.after_attempt([watch.BUSY], retry_possible=False) == watch.FAIL
    assert watch.after_attempt([watch.BUSY, watch.PASSED]) == watch.PASSED
    assert watch.after_attempt([watch.BUSY, watch.NO_RETURN]) == watch.FAIL


def test_the_range_of_presented_numbers_is_taken_in_turn_skipping_those_under_way():
    numbers = watch.range_numbers("+33180000098", 4)
    assert numbers == ("+33180000098", "+33180000099", "+33180000100", "+33180000101")
    assert watch.caller_for(5, numbers) == "+33180000099"
    assert watch.caller_for(5, numbers, busy={"+33180000099", "+33180000100"}) == "+33180000101"
    assert watch.caller_for(0, numbers, busy=set(numbers)) is None


def test_the_daily_budget_reserves_the_retry():
    assert [watch.may_start(n, 4) for n in range(3)] == [True, True, False]
    assert watch.may_start(0, 2) and not watch.may_start(1, 2)


def test_a_local_day_lasts_23_or_25_hours_on_a_change_of_time():
    spring = watch.local_day_bounds("Europe/Paris", dt.datetime(2026, 3, 29, 12, tzinfo=UTC))
    autumn = watch.local_day_bounds("Europe/Paris", dt.datetime(2026, 10, 25, 12, tzinfo=UTC))
    assert spring[1] - spring[0] == dt.timedelta(hours=23)
    assert autumn[1] - autumn[0] == dt.timedelta(hours=25)
