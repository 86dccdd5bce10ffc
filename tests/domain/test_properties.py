"""Property tests: the forecast and the live decision never disagree, whatever the hours and dates."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callrouter.dialplan.loader import load_text
from callrouter.domain import calendar, oncall, timeline
from callrouter.domain.call import Call
from callrouter.domain.model import CalendarSpec, Closure, Opening, Period, TimeRange, WeeklyHours
from callrouter.domain.routing import decide, route_for
from callrouter.prompts import Catalogue
from tests.factories import dialplan_text, examples

UTC = dt.timezone.utc
BASE, _ = load_text(dialplan_text().encode(), "base.yaml", Catalogue.load().names())
EXAMPLES = examples()
ZONES = ["Europe/Paris", "Indian/Reunion", "America/Cayenne", "America/New_York", "Australia/Lord_Howe"]

minutes = st.integers(0, 95).map(lambda q: q * 15)
ranges = st.tuples(minutes, minutes).filter(lambda r: r[0] != r[1]).map(lambda r: TimeRange(*r))
days = st.lists(ranges, max_size=3).map(tuple)
weekly = st.tuples(*[days] * 7).map(lambda d: WeeklyHours(tuple(d)))
instants = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2030, 12, 31)).map(
    lambda t: t.replace(tzinfo=UTC))


@st.composite
def periods(draw):
    start = draw(st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2031, 1, 1)))
    start = start.replace(second=0, microsecond=0, minute=start.minute // 15 * 15)
    return Period(start, start + dt.timedelta(minutes=15 * draw(st.integers(1, 4 * 24 * 20))))


@st.composite
def specs(draw):
    return CalendarSpec(
        timezone=draw(st.sampled_from(ZONES)),
        country="FR",
        subdivision=draw(st.sampled_from([None, "57", "6AE", "974"])),
        hours=draw(weekly),
        closures=tuple(Closure(p, f"c{i}") for i, p in enumerate(draw(st.lists(periods(), max_size=2)))),
        openings=tuple(Opening(p, f"o{i}") for i, p in enumerate(draw(st.lists(periods(), max_size=1)))),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), start=instants, span_h=st.integers(1, 24 * 9), probes=st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_timeline_partitions_time_and_matches_every_instant(spec, start, span_h, probes):
    dialplan = dataclasses.replace(BASE, calendar=spec)
    end = start + dt.timedelta(hours=span_h)
    segments = timeline.timeline(dialplan, start, end)
    assert segments[0].start == start and segments[-1].end == end
    for a, b in zip(segments, segments[1:]):
        assert a.end == b.start and a.start < a.end
        assert (a.status, a.detail, a.route, a.action, a.on_call) != (b.status, b.detail, b.route, b.action, b.on_call)
    for p in probes:
        t = start + (end - start) * p
        seg = next(s for s in segments if s.start <= t < s.end) if t < end else segments[-1]
        state = calendar.state_at(spec, t)
        assert (seg.status, seg.detail) == (state.status, state.detail), t
        assert seg.route == route_for(dialplan, state)[0]


@settings(max_examples=300, deadline=None)
@given(practice=st.sampled_from(sorted(EXAMPLES)), t=instants, digits=st.lists(st.sampled_from("0123456789*#"), max_size=3))
def test_every_instant_gets_exactly_one_decision(practice, t, digits):
    dialplan = EXAMPLES[practice]
    number = next(iter(dialplan.number_sites))
    call = Call(number, digits=tuple(digits))
    first = decide(dialplan, call, t)
    assert first == decide(dialplan, call, t)  # deterministic: one answer per instant
    assert first.dialplan_version == dialplan.version and first.why
    assert first.status in calendar.STATUSES


@settings(max_examples=100, deadline=None)
@given(practice=st.sampled_from(sorted(EXAMPLES)), start=instants, span_h=st.integers(1, 24 * 9),
       probes=st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_the_forecast_names_who_escalation_would_reach_at_every_instant(practice, start, span_h, probes):
    """The on-call shown in each segment is the rota's answer at any instant inside it, holidays included."""
    dialplan = EXAMPLES[practice]
    end = start + dt.timedelta(hours=span_h)
    segments = timeline.timeline(dialplan, start, end)
    for a, b in zip(segments, segments[1:]):
        assert (a.status, a.detail, a.route, a.action, a.on_call) != (b.status, b.detail, b.route, b.action, b.on_call)
    for p in probes:
        t = min(start + dt.timedelta(minutes=int(span_h * 60 * p)), end - dt.timedelta(minutes=1))
        seg = next(s for s in segments if s.start <= t < s.end)
        local = calendar.local_time(dialplan.calendar.timezone, t)
        assert seg.on_call == oncall.on_call(dialplan.on_call, local), t


def test_a_whole_year_of_each_example_is_covered_without_gap_or_overlap():
    for dialplan in EXAMPLES.values():
        start = dt.datetime(2027, 1, 1, tzinfo=UTC)
        end = dt.datetime(2028, 1, 1, tzinfo=UTC)
        segments = timeline.timeline(dialplan, start, end)
        total = sum(((s.end - s.start) for s in segments), dt.timedelta())
        assert total == end - start
        assert all(a.end == b.start for a, b in zip(segments, segments[1:]))


def _minute_by_minute(dialplan, start, end):
    segments = timeline.timeline(dialplan, start, end)
    t = start
    while t < end:
        seg = next(s for s in segments if s.start <= t < s.end)
        assert seg.status == calendar.state_at(dialplan.calendar, t).status, t
        t += dt.timedelta(minutes=1)


def test_boundaries_inside_the_spring_forward_gap_and_the_repeated_autumn_hour():
    """02:30 does not exist on 28 March 2027 in Paris and happens twice on 25 October 2026."""
    hours = WeeklyHours(((TimeRange(150, 210), TimeRange(540, 600)),) * 7)  # 02:30-03:30, 09:00-10:00
    for zone, day in [("Europe/Paris", dt.date(2027, 3, 28)), ("Europe/Paris", dt.date(2026, 10, 25)),
                      ("America/New_York", dt.date(2027, 3, 14)), ("America/New_York", dt.date(2026, 11, 1))]:
        spec = CalendarSpec(zone, "FR", None, hours)
        dialplan = dataclasses.replace(BASE, calendar=spec)
        start = dt.datetime.combine(day, dt.time(), tzinfo=calendar.zone(zone)).astimezone(UTC) - dt.timedelta(hours=2)
        _minute_by_minute(dialplan, start, start + dt.timedelta(hours=30))
