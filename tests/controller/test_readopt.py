"""A controller started again takes back the calls the media service kept, from the legs the
workers report and the call records (real recorder, real SQLite store, fake media plane)."""

from __future__ import annotations

from twisted.internet import defer

from callrouter.controller.calls import CallController
from callrouter.controller.desk import Desk
from callrouter.controller.legs import LegRouter
from callrouter.controller.readopt import CAUSE, Readoption
from callrouter.controller.session import State
from callrouter.controller.settings import ControllerSettings
from callrouter.domain.routing import Router
from callrouter.events.notifier import EventNotifier
from callrouter.events.testing import RecordingPublisher
from callrouter.media import protocol as p
from callrouter.metrics import Metrics
from callrouter.ports import utc_from_clock
from tests.controller.conftest import FakeMedia
from tests.controller.test_calls import SEC1, busy_secretary, queued_call
from tests.factories import examples


def restarted(h, tmp_path):
    """A second controller on the same store and clock, its own desk, leg router and media."""
    published = RecordingPublisher()
    media, legs = FakeMedia(published), LegRouter()
    router = Router(examples().values())
    settings = ControllerSettings(secretaries={"*": (SEC1,)}, voicemail_dir=tmp_path / "vm2", login_required=False)
    metrics = Metrics()
    desk = Desk(settings, h.clock, metrics, EventNotifier(published, "n1", h.clock))
    prompts = tmp_path / "prompts"
    controller = CallController(h.clock, media, h.recorder, lambda: router,
                                lambda name, practice: f"{prompts}/{name}.wav", settings, desk, legs, metrics,
                                events=EventNotifier(published, "n1", h.clock))
    closed: list = []

    def close_rest(kept):
        closed.append(h.calls.close_orphans(CAUSE, utc_from_clock(h.clock), kept))
        return defer.succeed(None)

    def records():
        assert h.recorder.flush(10)
        return defer.succeed(h.calls.open_calls())

    readopt = Readoption(controller, legs, records, close_rest, lambda: router, h.clock, expected=lambda: ["w0"])
    return controller, legs, media, readopt, closed


def test_a_bridged_call_stays_bridged_and_a_queued_one_keeps_its_place(harness, tmp_path):
    h = harness
    secretary_leg = busy_secretary(h)
    bridged_leg = next(leg for leg, s in h.controller.sessions.items() if s.state is State.BRIDGED)
    bridged_id = h.call_id(bridged_leg)
    h.clock.advance(5)
    waiting_leg = queued_call(h)
    waiting_id = h.call_id(waiting_leg)
    h.clock.advance(20)
    other_leg = h.incoming()                      # in the menu when the controller stops
    other_id = h.call_id(other_leg)
    h.clock.advance(2)

    controller, legs, media, readopt, closed = restarted(h, tmp_path)
    for event in (p.LegReport(bridged_leg, "c1", "<sip:+33612345678@trunk>", False, "confirmed", bridged=secretary_leg),
                  p.LegReport(secretary_leg, "c2", f"<{SEC1}>", True, "confirmed", bridged=bridged_leg),
                  p.LegReport(waiting_leg, "c3", "<sip:+33612345678@trunk>", False, "confirmed",
                              playing="/p/music_on_hold.wav"),
                  p.LegReport(other_leg, "c4", "<sip:+33612345678@trunk>", False, "confirmed"),
                  p.LegReport("w0-99", "c5", "<sip:x@y>", False, "confirmed"),   # no record: hung up
                  p.LegsReported(5)):
        legs.media_event("w0", event)
    settled = readopt.settle(defer.succeed(None))
    h.clock.advance(2)
    assert settled.called and closed == [[]]          # nothing left to close: each call re-adopted

    s = controller.sessions[bridged_leg]
    assert (s.state, s.other_leg, s.secretary.uri) == (State.BRIDGED, secretary_leg, SEC1)
    assert s.secretary.activity == "on_call"
    assert not media.commands(p.Dial)                  # the secretary is on the call: nobody rung
    w = controller.sessions[waiting_leg]
    assert w.state is State.QUEUED and controller.desk.queues.waiting()[0].session is w
    assert media.last(p.Play, waiting_leg).path.endswith("music_on_hold.wav") and media.last(p.Play, waiting_leg).loop
    assert media.prompts(other_leg)[:1] == ["welcome"]  # the rules from the start: never silence
    assert media.last(p.Hangup, "w0-99").code == 480

    legs.media_event("w0", p.LegEnded(secretary_leg, 200, "", "remote"))   # the secretary hangs up
    assert media.last(p.Hangup).leg == bridged_leg
    legs.media_event("w0", p.LegEnded(bridged_leg, 200, "", "local"))
    h.clock.advance(5)                                 # her wrap-up: then the waiting caller is offered
    assert media.last(p.Dial).uri == SEC1
    rec = h.record(bridged_id)
    assert (rec.outcome, rec.secretary, rec.cause) == ("answered", SEC1, None)
    assert h.record(waiting_id).ended_at is None and h.record(other_id).ended_at is None


def test_the_records_no_worker_reported_are_closed_as_a_restart(harness, tmp_path):
    h = harness
    leg = queued_call(h)
    call_id = h.call_id(leg)
    _, legs, _, readopt, closed = restarted(h, tmp_path)
    legs.media_event("w0", p.LegsReported(0))          # the worker lost it meanwhile
    readopt.settle(defer.succeed(None))
    h.clock.advance(2)
    assert closed == [[call_id]]
    rec = h.record(call_id)
    assert (rec.outcome, rec.cause) == ("failed", CAUSE)


def test_a_call_bridged_through_a_relay_to_another_worker_stays_bridged(harness, tmp_path):
    """The caller on w0, her secretary's leg on w1, joined by relay x4: both ends report x4."""
    h = harness
    secretary_leg = busy_secretary(h)
    caller_leg = next(leg for leg, s in h.controller.sessions.items() if s.state is State.BRIDGED)
    call_id = h.call_id(caller_leg)
    controller, legs, media, readopt, closed = restarted(h, tmp_path)
    legs.media_event("w0", p.LegReport(caller_leg, "c1", "<sip:+33612345678@trunk>", False, "confirmed", relays="x4"))
    legs.media_event("w0", p.LegsReported(1))
    legs.media_event("w1", p.LegReport(secretary_leg, "c2", f"<{SEC1}>", True, "confirmed", relays="x4"))
    legs.media_event("w1", p.LegsReported(1))
    readopt.settle(defer.succeed(None))
    h.clock.advance(2)
    s = controller.sessions[caller_leg]
    assert (s.state, s.other_leg, s.secretary.uri) == (State.BRIDGED, secretary_leg, SEC1)
    assert not media.commands(p.Hangup) and not media.commands(p.Play, caller_leg)
    legs.media_event("w0", p.LegEnded(caller_leg, 200, "", "remote"))      # the patient hangs up
    assert media.last(p.Hangup).leg == secretary_leg
    rec = h.record(call_id)
    assert (rec.outcome, rec.secretary, rec.cause) == ("answered", SEC1, None)
