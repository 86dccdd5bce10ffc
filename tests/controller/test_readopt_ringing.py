"""A controller started again keeps what was under way for a queued caller: the secretary's phone
ringing for her rings on (and is bridged when she answers), and the overflow's wait_max and the
position announcements keep the schedule of her queued time (real recorder and SQLite store,
fake media plane, one clock)."""

from __future__ import annotations

from twisted.internet import defer

from callrouter.controller.session import State
from callrouter.media import protocol as p
from tests.controller.test_calls import SEC1, busy_secretary, queued_call
from tests.controller.test_readopt import restarted

CALLER = "<sip:+33612345678@trunk>"
RING_TIMEOUT_S = 20.0  # ControllerSettings' default
WAIT_MAX_S, ANNOUNCE_S = 90.0, 45.0  # cabinet-dr-martin-paris: overflow wait_max, the default announce interval


def stopped(h) -> None:
    """The first controller's process is gone: none of its timers fires any more."""
    for s in h.controller.sessions.values():
        s.timers.cancel_all()


def readopt(legs, readoption, reports, clock) -> None:
    for event in reports:
        legs.media_event("w0", event)
    legs.media_event("w0", p.LegsReported(len(reports)))
    settled = readoption.settle(defer.succeed(None))
    clock.advance(0.5)
    assert settled.called


def ringing_call(h):
    leg = queued_call(h)                 # SEC1 idle: offered at once
    dial = h.media.last(p.Dial)
    assert dial.uri == SEC1
    return leg, dial.leg


def test_a_phone_ringing_across_the_restart_rings_on_and_is_bridged_when_she_answers(harness, tmp_path):
    h = harness
    leg, offer = ringing_call(h)
    call_id = h.call_id(leg)
    h.clock.advance(4)
    stopped(h)
    controller, legs, media, readoption, closed = restarted(h, tmp_path)
    readopt(legs, readoption, [p.LegReport(leg, "c1", CALLER, False, "confirmed", playing="/p/ringback.wav"),
                               p.LegReport(offer, "c2", f'"Sec" <{SEC1}>;tag=x', True, "ringing")], h.clock)
    assert closed == [[]]
    s = controller.sessions[leg]
    assert s.state is State.RINGING and list(s.offers) == [offer]
    assert s.offers[offer].activity == "ringing"
    assert not media.commands(p.Hangup) and not media.commands(p.Dial)   # nobody hung up, nobody rung twice
    assert media.last(p.Play, leg).path.endswith("ringback.wav")
    legs.media_event("w0", p.LegState(offer, "confirmed"))               # she answers
    bridge = media.last(p.Bridge)
    assert (bridge.leg, bridge.other) == (leg, offer)
    assert controller.sessions[leg].state is State.BRIDGED
    rec = h.record(call_id)
    assert rec.secretary == SEC1 and rec.answered_at is not None and rec.ended_at is None


def test_a_phone_ringing_across_the_restart_rings_out_after_the_ring_timeout(harness, tmp_path):
    h = harness
    leg, offer = ringing_call(h)
    stopped(h)
    controller, legs, media, readoption, _ = restarted(h, tmp_path)
    readopt(legs, readoption, [p.LegReport(leg, "c1", CALLER, False, "confirmed"),
                               p.LegReport(offer, "c2", f"<{SEC1}>", True, "early")], h.clock)
    h.clock.advance(RING_TIMEOUT_S - 1)
    assert not media.commands(p.Hangup)
    h.clock.advance(1.5)
    assert media.last(p.Hangup, offer).code == 487                       # withdrawn as any offer rung out
    legs.media_event("w0", p.LegEnded(offer, 487, "", "local"))
    assert controller.sessions[leg].state in (State.QUEUED, State.RINGING)  # back in line, offered again


def test_a_phone_answered_while_no_controller_was_there_is_bridged_at_once(harness, tmp_path):
    h = harness
    leg, offer = ringing_call(h)
    call_id = h.call_id(leg)
    stopped(h)
    controller, legs, media, readoption, _ = restarted(h, tmp_path)
    readopt(legs, readoption, [p.LegReport(leg, "c1", CALLER, False, "confirmed"),
                               p.LegReport(offer, "c2", f"<{SEC1}>", True, "confirmed")], h.clock)
    bridge = media.last(p.Bridge)
    assert (bridge.leg, bridge.other) == (leg, offer) and not media.commands(p.Hangup)
    assert controller.sessions[leg].secretary.uri == SEC1
    assert h.record(call_id).secretary == SEC1


def test_an_offer_to_a_secretary_the_desk_does_not_know_is_hung_up_and_the_caller_waits(harness, tmp_path):
    h = harness
    leg, offer = ringing_call(h)
    stopped(h)
    controller, legs, media, readoption, _ = restarted(h, tmp_path)
    readopt(legs, readoption, [p.LegReport(leg, "c1", CALLER, False, "confirmed"),
                               p.LegReport(offer, "c2", "<sip:gone@127.0.0.1:5999>", True, "ringing")], h.clock)
    assert media.last(p.Hangup, offer).code == 487
    assert media.last(p.Dial).uri == SEC1                                # offered again, from the queue


def test_a_secretary_ringing_across_the_restart_is_not_offered_another_caller(harness, tmp_path):
    """The caller behind is reported first: she must still wait, the secretary's phone ringing."""
    h = harness
    leg, offer = ringing_call(h)
    behind = queued_call(h)
    dials = len(h.media.commands(p.Dial))
    assert dials == 1
    stopped(h)
    controller, legs, media, readoption, _ = restarted(h, tmp_path)
    readopt(legs, readoption, [p.LegReport(behind, "c3", CALLER, False, "confirmed"),
                               p.LegReport(leg, "c1", CALLER, False, "confirmed"),
                               p.LegReport(offer, "c2", f"<{SEC1}>", True, "ringing")], h.clock)
    assert not media.commands(p.Dial) and not media.commands(p.Hangup)
    assert controller.sessions[behind].state is State.QUEUED and controller.sessions[leg].state is State.RINGING


def waiting_behind_a_busy_secretary(h, tmp_path, waited: float):
    """SEC1 on a call, a second caller queued `waited` seconds before the controller restarts."""
    secretary_leg = busy_secretary(h)
    bridged = next(leg for leg, s in h.controller.sessions.items() if s.state is State.BRIDGED)
    waiting = queued_call(h)
    h.clock.advance(waited)
    stopped(h)
    controller, legs, media, readoption, _ = restarted(h, tmp_path)
    readopt(legs, readoption, [
        p.LegReport(bridged, "c1", CALLER, False, "confirmed", bridged=secretary_leg),
        p.LegReport(secretary_leg, "c2", f"<{SEC1}>", True, "confirmed", bridged=bridged),
        p.LegReport(waiting, "c3", CALLER, False, "confirmed", playing="/p/music_on_hold.wav")], h.clock)
    assert controller.sessions[waiting].state is State.QUEUED
    return controller, media, waiting


def test_the_overflow_wait_max_counts_from_the_queued_time_not_from_the_restart(harness, tmp_path):
    controller, media, waiting = waiting_behind_a_busy_secretary(harness, tmp_path, waited=60)
    harness.clock.advance(WAIT_MAX_S - 60 - 2)
    assert controller.sessions[waiting].state is State.QUEUED
    harness.clock.advance(3)
    s = controller.sessions[waiting]
    assert s.state is not State.QUEUED and s.overflowed                 # 90 s after she was queued


def test_the_position_announcements_keep_their_schedule_across_the_restart(harness, tmp_path):
    controller, media, waiting = waiting_behind_a_busy_secretary(harness, tmp_path, waited=20)

    def announced() -> int:
        return sum(1 for name in media.prompts(waiting) if name.startswith("queue_position"))

    harness.clock.advance(ANNOUNCE_S - 20 - 2)                           # the first one is due at 45 s
    assert announced() == 0
    harness.clock.advance(3)
    assert announced() == 1, media.prompts(waiting)
