"""The service level's inputs, counted from the call events the notifier gives its sinks: a call
counts once its fate is known (answered, ended, or still unanswered at the threshold)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from callrouter.events.build import NoPublisher
from callrouter.events.notifier import EventNotifier
from callrouter.metrics import Metrics
from callrouter.domain.kpis import KpiParams
from callrouter.observe.service_level import DEFAULTS, ServiceLevelSink

PRACTICE = "cab"


class Service:
    def __init__(self, params: KpiParams = DEFAULTS) -> None:
        self.clock = Clock()
        self.metrics = Metrics()
        self.sink = ServiceLevelSink(self.metrics, self.clock, lambda practice: params)
        self.events = EventNotifier(NoPublisher(), "n1", self.clock, also=(self.sink,))

    def value(self, name: str, practice: str = PRACTICE) -> float:
        return self.metrics.registry.get_sample_value(name, {"practice": practice}) or 0.0

    def counts(self, practice: str = PRACTICE) -> tuple[float, float, float]:
        """(calls for a secretary, answered in threshold, short abandons)."""
        return (self.value("callrouter_calls_for_secretary_total", practice),
                self.value("callrouter_calls_answered_in_threshold_total", practice),
                self.value("callrouter_calls_short_abandoned_total", practice))

    def queued(self, call_id: str, practice: str = PRACTICE) -> None:
        self.events.call_arrived(call_id, practice, "+33612345678")
        self.events.call_queued(call_id, practice, "general")

    def answered(self, call_id: str, practice: str = PRACTICE) -> None:
        self.events.offer_made({"secretary": "alice", "call_id": call_id, "practice": practice, "queue": {"id": "general"}})
        self.events.call_answered(call_id, practice, "sip:alice@edge")

    def ended(self, call_id: str, outcome: str, practice: str = PRACTICE) -> None:
        self.events.call_ended(call_id, practice, outcome)


@pytest.fixture
def svc() -> Service:
    return Service()


def test_a_call_answered_within_the_threshold_counts_on_both_sides(svc):
    svc.queued("c1")
    assert svc.counts() == (0, 0, 0)  # not known yet: the ratio does not dip while she may still answer
    svc.clock.advance(29)
    svc.answered("c1")
    assert svc.counts() == (1, 1, 0)
    svc.clock.advance(60)
    svc.ended("c1", "answered")
    assert svc.counts() == (1, 1, 0)
    assert svc.sink.tracked() == 0


def test_a_call_still_waiting_at_the_threshold_counts_then_and_its_late_answer_adds_nothing(svc):
    svc.queued("c1")
    svc.clock.advance(30)
    assert svc.counts() == (0, 0, 0)  # an answer at the threshold itself is within it
    svc.clock.advance(0.1)
    assert svc.counts() == (1, 0, 0)
    svc.answered("c1")
    svc.ended("c1", "answered")
    assert svc.counts() == (1, 0, 0)


def test_a_caller_hanging_up_within_the_short_abandon_limit_is_a_short_abandon(svc):
    svc.queued("c1")
    svc.clock.advance(4)
    svc.ended("c1", "abandoned")
    svc.queued("c2")
    svc.clock.advance(6)
    svc.ended("c2", "abandoned")
    assert svc.counts() == (2, 0, 1)
    svc.clock.advance(60)  # no timer left behind
    assert svc.counts() == (2, 0, 1)


def test_a_call_ended_otherwise_before_the_threshold_counts_unanswered(svc):
    svc.queued("c1")
    svc.clock.advance(2)
    svc.ended("c1", "voicemail")  # overflowed (wait_max shorter than the threshold) to voicemail
    assert svc.counts() == (1, 0, 0)


def test_the_clock_starts_at_the_first_queue_even_when_the_call_is_put_back_in_line(svc):
    svc.queued("c1")
    svc.clock.advance(20)
    svc.events.call_queued("c1", PRACTICE, "general")  # an offer not taken: back in line
    svc.clock.advance(15)
    assert svc.counts() == (1, 0, 0)
    svc.answered("c1")
    assert svc.counts() == (1, 0, 0)


def test_calls_that_never_queued_and_other_events_are_not_counted(svc):
    svc.events.call_arrived("c1", PRACTICE, None)
    svc.events.call_in_ivr("c1", PRACTICE, "triage")
    svc.events.call_ended("c1", PRACTICE, "overflow")  # nobody logged in: callrouter_overflows_total counts it
    svc.events.secretary_changed("sip:alice@edge", "available")
    svc.events.queue_changed(PRACTICE, "general", 0, 0)
    svc.events.call_answered("task-1", PRACTICE, "sip:alice@edge")  # a callback task answered
    assert svc.counts() == (0, 0, 0)
    assert svc.sink.tracked() == 0


def test_practices_are_counted_apart_with_their_own_thresholds():
    thresholds = {"fast": KpiParams(sl_threshold_s=10), "slow": KpiParams(sl_threshold_s=60)}
    svc = Service()
    svc.sink = ServiceLevelSink(svc.metrics, svc.clock, thresholds.__getitem__)
    svc.events = EventNotifier(NoPublisher(), "n1", svc.clock, also=(svc.sink,))
    svc.queued("a", "fast")
    svc.queued("b", "slow")
    svc.clock.advance(20)
    svc.answered("a", "fast")
    svc.answered("b", "slow")
    assert svc.counts("fast") == (1, 0, 0)
    assert svc.counts("slow") == (1, 1, 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), st.sampled_from(["answer", "abandoned", "voicemail", "wait"])),
                max_size=12))
def test_each_call_counts_once_and_the_ratio_stays_between_0_and_1(calls):
    svc = Service()
    for i, (delay, what) in enumerate(calls):
        call_id = f"c{i}"
        svc.queued(call_id)
        svc.clock.advance(delay)
        if what == "answer":
            svc.answered(call_id)
        elif what != "wait":
            svc.ended(call_id, what)
    svc.clock.advance(DEFAULTS.sl_threshold_s + 1)
    for_secretary, in_threshold, short = svc.counts()
    assert for_secretary == len(calls)
    assert 0 <= in_threshold <= for_secretary - short
    expected_in = sum(1 for d, w in calls if w == "answer" and d <= DEFAULTS.sl_threshold_s)
    assert in_threshold == expected_in
