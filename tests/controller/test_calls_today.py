""""Calls today": counted on the practice's local day, from the call records, so a restart does not
reset it (the caller's count on the screen-pop, a secretary's answers for `fewest_calls`)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from callrouter.controller.calls import CallController
from callrouter.controller.desk import Desk
from callrouter.controller.legs import LegRouter
from callrouter.events.notifier import EventNotifier
from callrouter.events.testing import RecordingPublisher
from callrouter.media import protocol as p
from callrouter.metrics import Metrics
from callrouter.store.calls import arrivals_since
from tests.controller.conftest import MONDAY_10_PARIS, FakeMedia, Harness
from tests.controller.test_calls import queued_call
from tests.factories import examples

PEDIA = "+262262410001"  # Saint-Denis de La Réunion, UTC+4
CALLER = "+33655555555"
A, B = "sip:a@192.0.2.1", "sip:b@192.0.2.2"


def at_utc(h, when: dt.datetime) -> None:
    h.clock.advance(when.timestamp() - h.clock.seconds())


def restarted(h) -> Harness:
    """A new controller on the same call store, seeded from it as `callrouter serve` does at start."""
    published = RecordingPublisher()
    media = FakeMedia(published)
    old = h.controller
    metrics, events, legs = Metrics(), EventNotifier(published, "n1", h.clock), LegRouter()
    desk = Desk(old.ctx.settings, h.clock, metrics, events)
    c = CallController(h.clock, media, h.recorder, old._router, old.ctx.prompt_path, old.ctx.settings, desk, legs,
                       metrics, events=events)
    assert h.recorder.flush(10)
    c.counts.restore(arrivals_since(h.calls._db, c.counts.since()))
    return Harness(c, desk, legs, media, h.clock, h.recorder, h.calls, published=published)


def pop_count(h) -> int:
    return h.published.on("/screen-pop")[-1].payload["caller"]["calls_today"]


def test_calls_today_is_the_practices_local_day_not_the_utc_date(harness):
    """Réunion: 01:30 and 08:30 on Tuesday there are Monday 21:30 and Tuesday 04:30 in UTC."""
    h = harness
    at_utc(h, dt.datetime(2026, 11, 23, 21, 30, tzinfo=dt.timezone.utc))
    h.ended(h.incoming(number=PEDIA, caller=CALLER))
    at_utc(h, dt.datetime(2026, 11, 24, 4, 30, tzinfo=dt.timezone.utc))
    queued_call(h, number=PEDIA, caller=CALLER, digit="3")
    assert pop_count(h) == 2


def test_a_call_the_previous_local_evening_is_not_today(harness):
    """Réunion: Monday 23:30 there is 19:30 UTC, the same UTC date as Tuesday 00:30 there (20:30)."""
    h = harness
    at_utc(h, dt.datetime(2026, 11, 23, 19, 30, tzinfo=dt.timezone.utc))
    h.ended(h.incoming(number=PEDIA, caller=CALLER))
    at_utc(h, dt.datetime(2026, 11, 23, 20, 30, tzinfo=dt.timezone.utc))
    h.ended(h.incoming(number=PEDIA, caller=CALLER))
    assert h.controller.counts.calls_today("pediatrie-saint-denis", CALLER) == 1


def test_a_restart_keeps_the_callers_calls_today(harness):
    h = harness
    h.ended(h.incoming(caller=CALLER))
    h.clock.advance(60)
    h.ended(h.incoming(caller=CALLER))
    again = restarted(h)
    h.clock.advance(60)
    queued_call(again, caller=CALLER)
    assert pop_count(again) == 3


def test_fewest_calls_counts_what_she_answered_before_a_restart(make):
    plans = examples()
    d = plans["cabinet-dr-martin"]
    plans[d.practice] = dataclasses.replace(
        d, queues={**d.queues, "general": dataclasses.replace(d.queues["general"], strategy="fewest_calls")})
    h = make(secretaries={"*": (A, B)}, dialplans=list(plans.values()))
    answered_by = []
    for _ in range(3):  # a, b, then a again (tied, a idle longer)
        leg = queued_call(h)
        dial = h.media.last(p.Dial)
        h.answered(dial.leg)
        h.ended(leg)
        h.clock.advance(60)  # past the wrap-up
        answered_by.append(dial.uri)
    assert answered_by == [A, B, A]
    again = restarted(h)
    for secretary in again.desk.queues.secretaries():
        secretary.idle_since = 0.0 if secretary.uri == A else h.clock.seconds()  # a idle far longer
    queued_call(again)
    assert again.media.last(p.Dial).uri == B  # 1 call today against a's 2, whatever the idleness
    assert again.desk.secretary(A).calls_on(dt.date(2026, 11, 23), again.controller.counts.zone("cabinet-dr-martin")) == 2


def test_a_call_counted_live_and_found_in_the_records_counts_once(harness):
    h = harness
    h.ended(h.incoming(caller=CALLER))
    assert h.recorder.flush(10)
    h.controller.counts.restore(arrivals_since(h.calls._db, h.controller.counts.since()))
    assert h.controller.counts.calls_today("cabinet-dr-martin", CALLER) == 1
