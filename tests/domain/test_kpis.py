"""The indicators of KPIS.md (callrouter.domain.kpis): plain records and a period in, figures out.
Table-driven for the definitions, property tests for what must hold whatever the records."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from callrouter.domain.kpis import (
    CLASSES, CallFact, EscalationFact, KpiParams, KpiRecords, Period, Rate, Spread, TaskFact, by_day, by_hour,
    call_figures, classify, percentile, practice_kpis,
)

PARIS = ZoneInfo("Europe/Paris")
UTC = dt.timezone.utc
T0 = dt.datetime(2027, 2, 3, 9, 0, tzinfo=UTC)  # 10:00 in Paris


def s(seconds: float) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)


def call(id="c", practice="cab", at=T0, route="open", queued=0.0, answered=None, ended=60.0, outcome="answered",
         overflow=None, menu=False, queue="general") -> CallFact:
    """A call arrived at `at`; times of the others in seconds after it (None: never)."""
    q = None if queued is None else at + s(queued)
    return CallFact(id, practice, at, route, queue if q else None, q,
                    None if answered is None else at + s(answered), None if ended is None else at + s(ended),
                    outcome, overflow, menu)


@pytest.mark.parametrize("fact, expected", [
    (call(queued=None, outcome="announced"), "other"),                       # a message, no queue
    (call(answered=12), "answered"),
    (call(answered=None, ended=None, outcome=None), "in_progress"),         # waiting now
    (call(answered=None, ended=4, outcome="abandoned"), "short_abandon"),
    (call(answered=None, ended=5, outcome="abandoned"), "short_abandon"),   # the limit itself is short
    (call(answered=None, ended=6, outcome="abandoned"), "abandoned"),
    (call(queued=None, overflow="nobody", answered=None, ended=20, outcome="voicemail"), "overflowed"),
    (call(queued=None, overflow="length", answered=None, ended=3, outcome="abandoned"), "overflowed"),
    (call(overflow="wait", answered=None, ended=95, outcome="overflow"), "overflowed"),
    (call(overflow="wait", answered=None, ended=99, outcome="callback_requested"), "callback"),
    (call(answered=None, ended=30, outcome="failed"), "failed"),
])
def test_each_call_falls_in_one_class(fact, expected):
    assert classify(fact) == expected


def test_a_practice_may_agree_another_short_abandon_limit():
    assert classify(call(answered=None, ended=8, outcome="abandoned"), KpiParams(short_abandon_s=10)) == "short_abandon"


def test_the_call_figures_of_a_morning():
    calls = [
        call("a", answered=10), call("b", answered=30), call("c", answered=45),     # 2 of 3 within 30 s
        call("d", answered=None, ended=3, outcome="abandoned"),                     # short: out of the rates
        call("e", answered=None, ended=40, outcome="abandoned"),                    # missed
        call("f", queued=None, overflow="nobody", answered=None, ended=20, outcome="voicemail"),  # missed
        call("g", overflow="wait", answered=None, ended=95, outcome="callback_requested"),      # not missed
        call("h", queued=None, outcome="announced", route="closed"),                # not for a secretary
        call("i", answered=None, ended=None, outcome=None),                         # waiting now
    ]
    f = call_figures(calls)
    assert (f.received, f.for_secretary, f.answered, f.short_abandons, f.abandoned, f.overflowed,
            f.callbacks, f.in_progress) == (9, 8, 3, 1, 1, 1, 1, 1)
    assert f.service_level == Rate(2, 6) and f.missed == Rate(2, 6)
    assert (f.answer_time.count, f.answer_time.p50, f.answer_time.mean) == (3, 30.0, pytest.approx(85 / 3))
    assert f.answer_time.p90 == pytest.approx(42.0)
    out = f.to_json()
    assert out["service_level"] == {"numerator": 2, "denominator": 6, "rate": pytest.approx(1 / 3),
                                    "threshold_s": 30.0, "target": 0.8}


def test_no_call_for_a_secretary_means_no_rate_not_zero_nor_a_hundred_percent():
    f = call_figures([call(queued=None, outcome="announced"), call(answered=None, ended=2, outcome="abandoned")])
    assert f.service_level == Rate(0, 0) and f.service_level.value is None and f.missed.value is None
    assert f.to_json()["missed"]["rate"] is None
    assert f.answer_time == Spread() and f.to_json()["answer_time"]["p50_s"] is None


@pytest.mark.parametrize("values, q, expected", [
    ([10], 0.9, 10), ([10, 20], 0.5, 15), ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9, 9.1), ([1, 2, 3], 0.5, 2),
])
def test_percentiles_are_linear_between_ranks(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected)


def test_a_paris_day_is_cut_at_local_midnight_and_dst_days_have_23_or_25_hours():
    since, until = Period.day(dt.date(2027, 2, 3)).bounds(PARIS)
    assert (since, until) == (dt.datetime(2027, 2, 2, 23, tzinfo=UTC), dt.datetime(2027, 2, 3, 23, tzinfo=UTC))
    for day, hours in [(dt.date(2027, 3, 28), 23), (dt.date(2027, 10, 31), 25), (dt.date(2027, 6, 1), 24)]:
        a, b = Period.day(day).bounds(PARIS)
        assert (b - a) == dt.timedelta(hours=hours), day


def test_periods_are_days_weeks_from_monday_and_months():
    assert Period.iso_week(2027, 5) == Period(dt.date(2027, 2, 1), dt.date(2027, 2, 8))
    assert Period.month(2027, 12) == Period(dt.date(2027, 12, 1), dt.date(2028, 1, 1))
    assert len(Period.month(2028, 2).days()) == 29
    assert Period.today(dt.datetime(2027, 2, 3, 23, 30, tzinfo=UTC), PARIS) == Period.day(dt.date(2027, 2, 4))
    with pytest.raises(ValueError):
        Period(dt.date(2027, 2, 3), dt.date(2027, 2, 3))


def test_a_call_at_half_past_midnight_in_paris_counts_on_its_local_day():
    late = dt.datetime(2027, 2, 3, 23, 30, tzinfo=UTC)  # 00:30 on the 4th in Paris
    records = KpiRecords(calls=(call("late", at=late, answered=5),))
    assert practice_kpis("cab", Period.day(dt.date(2027, 2, 3)), PARIS, records).calls.received == 0
    assert practice_kpis("cab", Period.day(dt.date(2027, 2, 4)), PARIS, records).calls.received == 1


def test_callback_completion_and_delays_with_expired_and_cancelled_apart():
    tasks = (TaskFact("t1", "cab", "overflow", T0, "done", T0 + s(600)),
             TaskFact("t2", "cab", "voicemail", T0, "done", T0 + s(1800)),
             TaskFact("t3", "cab", "voicemail", T0, "expired"),
             TaskFact("t4", "cab", "secretary", T0, "cancelled"),
             TaskFact("t5", "cab", "overflow", T0, "open"),
             TaskFact("t6", "other", "overflow", T0, "done", T0 + s(60)))
    k = practice_kpis("cab", Period.day(T0.date()), PARIS, KpiRecords(tasks=tasks)).callbacks
    assert (k.created, k.done, k.expired, k.cancelled, k.still_open) == (5, 2, 1, 1, 1)
    assert k.completion == Rate(2, 5) and (k.delay.p50, k.delay.p90) == (1200.0, pytest.approx(1680.0))
    assert (k.messages_left, k.messages_called_back) == (2, 1)


def test_escalations_per_tier_with_acknowledgement_delays_and_the_unacknowledged_one_by_one():
    chains = (EscalationFact(1, "cab", "urgent", T0, "done", "acknowledged", T0 + s(120)),
              EscalationFact(2, "cab", "urgent", T0, "done", "acknowledged", T0 + s(300), declined=1),
              EscalationFact(3, "cab", "urgent", T0, "done", "exhausted", declined=2),
              EscalationFact(4, "cab", "urgent", T0, "active"),
              EscalationFact(5, "cab", "vital", T0, "done", "cancelled"))
    [urgent, vital] = practice_kpis("cab", Period.day(T0.date()), PARIS, KpiRecords(escalations=chains)).escalations
    assert (urgent.tier, urgent.started, urgent.acknowledged, urgent.declined_steps, urgent.exhausted,
            urgent.active) == ("urgent", 4, 2, 3, 1, 1)
    assert (urgent.ack_delay.p50, urgent.ack_delay.worst, urgent.unacknowledged) == (210.0, 300.0, (3,))
    assert vital.unacknowledged == () and vital.ack_delay.p50 is None


def test_out_of_hours_calls_by_what_they_got():
    calls = (call("open", answered=5),
             call("msg", route="closed", queued=None, outcome="announced"),
             call("menu", route="holiday", queued=None, outcome="abandoned", menu=True),
             call("urg", route="closure:formation", queued=None, outcome="announced", menu=True),
             call("vm", route="closed", queued=None, outcome="voicemail", menu=True))
    chains = (EscalationFact(1, "cab", "vital", T0, "active", call_id="urg"),)
    k = practice_kpis("cab", Period.day(T0.date()), PARIS, KpiRecords(calls, (), chains))
    assert k.out_of_hours.received == 4
    assert {g: n for g, n in k.out_of_hours.got.items() if n} == {"message": 1, "menu": 1, "escalation": 1,
                                                                    "voicemail": 1}
    assert k.to_json()["out_of_hours"]["got"]["secretary"] == 0


def test_per_hour_of_the_local_day():
    records = KpiRecords(calls=(call("a", at=T0), call("b", at=T0 + s(1800)), call("c", at=T0 + s(3600))))
    hours = by_hour("cab", Period.day(T0.date()), PARIS, records)
    assert len(hours) == 24 and [h.received for h in hours][10:12] == [2, 1]


# --- properties --------------------------------------------------------------------------------------------

OUTCOMES = ("answered", "abandoned", "voicemail", "overflow", "callback_requested", "announced", "failed", None)


@st.composite
def calls(draw, start=dt.datetime(2027, 3, 27, 0, tzinfo=UTC), span_h=72):
    n = draw(st.integers(0, 40))
    out = []
    for i in range(n):
        at = start + s(draw(st.integers(0, span_h * 3600)))
        queued = draw(st.one_of(st.none(), st.floats(0, 60)))
        answered = draw(st.one_of(st.none(), st.floats(0, 300))) if queued is not None else None
        ended = draw(st.one_of(st.none(), st.floats(0, 900)))
        if answered is not None and ended is not None:
            ended = max(ended, answered + queued)
        out.append(call(f"c{i}", at=at, route=draw(st.sampled_from(["open", "closed", "holiday", None])),
                        queued=queued, answered=None if answered is None else queued + answered, ended=ended,
                        outcome=draw(st.sampled_from(OUTCOMES)),
                        overflow=draw(st.sampled_from([None, None, "nobody", "wait", "length"])),
                        menu=draw(st.booleans())))
    return tuple(out)


@given(calls(), st.floats(1, 20), st.floats(5, 120))
@settings(max_examples=150, deadline=None)
def test_rates_are_consistent_whatever_the_calls(facts, short, threshold):
    params = KpiParams(short_abandon_s=short, sl_threshold_s=threshold)
    f = call_figures(facts, params)
    classes = [classify(c, params) for c in facts]
    assert sum(classes.count(k) for k in CLASSES) == f.received
    assert f.service_level.numerator <= f.service_level.denominator
    assert f.missed.numerator <= f.missed.denominator
    assert f.service_level.numerator + f.missed.numerator <= f.service_level.denominator
    # short abandons are on neither side
    assert f.service_level.denominator == f.for_secretary - f.short_abandons - f.in_progress
    without_short = [c for c, k in zip(facts, classes) if k != "short_abandon"]
    g = call_figures(without_short, params)
    assert (g.service_level, g.missed) == (f.service_level, f.missed)
    for rate in (f.service_level, f.missed):
        assert (rate.value is None) == (rate.denominator == 0)
        assert rate.value is None or 0 <= rate.value <= 1


ADDITIVE = ("received", "for_secretary", "answered", "answered_in_threshold", "short_abandons", "abandoned",
            "overflowed", "callbacks", "failed", "in_progress")


@given(calls())
@settings(max_examples=100, deadline=None)
def test_a_period_split_in_days_sums_to_the_whole_across_a_dst_change(facts):
    period = Period(dt.date(2027, 3, 27), dt.date(2027, 3, 30))  # Paris springs forward on the 28th
    records = KpiRecords(calls=facts)
    whole = practice_kpis("cab", period, PARIS, records)
    days = by_day("cab", period, PARIS, records)
    assert len(days) == 3
    for name in ADDITIVE:
        assert sum(getattr(d.calls, name) for d in days) == getattr(whole.calls, name), name
    assert sum(d.out_of_hours.received for d in days) == whole.out_of_hours.received
    hours = by_hour("cab", period, PARIS, records)
    for name in ADDITIVE:
        assert sum(getattr(h, name) for h in hours) == getattr(whole.calls, name), name


@given(st.lists(st.floats(0, 10000), min_size=1, max_size=50))
def test_spread_bounds(values):
    spread = Spread.of(values)
    assert min(values) <= spread.p50 <= spread.p90 <= spread.worst == max(values)
    assert min(values) - 1e-6 <= spread.mean <= max(values) + 1e-6
