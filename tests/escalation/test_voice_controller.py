"""The controller's side of alert calls: events of legs it does not own go to the alert calls, and
a practitioner who pressed 2 is bridged with the patient still on the line."""

from __future__ import annotations

from callrouter.controller import alerts as al
from callrouter.media import protocol as p
from tests.controller.conftest import make_harness


class PoolOnHarness:
    """Alert media on the harness's fake media (dials and commands recorded alike)."""

    def __init__(self, media):
        self.media = media

    def pick(self, legs: int = 1):
        return "w0"

    def dial(self, worker, command):
        self.media.dial(worker, command)

    def send(self, command):
        self.media.send(command)


def harness_with_alerts(tmp_path):
    h, ctx = make_harness(tmp_path)
    alerts = al.AlertCalls(h.clock, PoolOnHarness(h.media), lambda name, practice: f"/p/{name}.wav",
                           al.AlertSettings("127.0.0.1:5080"), h.controller, h.legs)
    return h, ctx, alerts


def place(h, alerts, call_id):
    results, acks = [], []
    request = al.AlertRequest("esc-1-0-0", "+33611111111", "cabinet-dr-martin", "Cabinet", "urgent",
                              "+33612345678", call_id)
    alerts.place(request, acks.append).addBoth(results.append)
    return h.media.last(p.Dial), results, acks


def test_events_of_an_alert_leg_reach_the_alert_calls_through_the_controller(tmp_path):
    h, ctx, alerts = harness_with_alerts(tmp_path)
    try:
        dial, results, _ = place(h, alerts, None)
        h.answered(dial.leg)  # through the leg router
        assert h.media.last(p.Play).path == "/p/alert_intro.wav"
        h.ended(dial.leg)
        assert results == [al.ANSWERED_NO_KEY]
        dial, results, _ = place(h, alerts, None)
        h.legs.leg_lost("w0", dial.leg, "worker_lost")
        assert results[0].check(al.AlertNotPlaced)
    finally:
        h.recorder.stop()
        ctx.__exit__(None, None, None)


def test_pressing_2_bridges_the_practitioner_with_the_waiting_patient(tmp_path):
    h, ctx, alerts = harness_with_alerts(tmp_path)
    try:
        leg = h.incoming()
        call_id = h.call_id(leg)
        h.finish_playing(leg)
        h.finish_playing(leg)
        h.digit(leg, "3")  # queued; the secretary's phone rings
        offer = h.media.last(p.Dial)
        assert h.controller.patient_worker(call_id) == "w0"
        dial, results, acks = place(h, alerts, call_id)
        h.answered(dial.leg)
        h.digit(dial.leg, "2")
        assert acks == ["2"] and results == [al.CONNECTED]
        h.legs.media_event("w0", p.PlaybackFinished(dial.leg, "/p/alert_connecting.wav"))
        assert h.media.last(p.Bridge) == p.Bridge(leg, dial.leg)
        assert p.Hangup(offer.leg, 487) in h.media.commands(p.Hangup)  # the secretary stops ringing
        assert h.controller.patient_worker(call_id) is None  # talking to the practitioner now
        assert h.controller.patient_busy(call_id)  # with the practitioner: a second alert won't call over it
        h.clock.advance(60)
        h.ended(dial.leg)  # the practitioner hangs up: so is the patient
        assert h.media.last(p.Hangup).leg == leg
        assert h.record(call_id).outcome == "answered"
    finally:
        h.recorder.stop()
        ctx.__exit__(None, None, None)


def test_a_patient_on_another_worker_or_gone_cannot_be_connected(tmp_path):
    h, ctx, _ = harness_with_alerts(tmp_path)
    try:
        leg = h.incoming()
        call_id = h.call_id(leg)
        assert not h.controller.connect_practitioner(call_id, "w9", "alert-x")
        h.ended(leg)
        assert h.controller.patient_worker(call_id) is None
        assert not h.controller.connect_practitioner(call_id, "w0", "alert-x")
        assert not h.controller.connect_practitioner("nope", "w0", "alert-x")
    finally:
        h.recorder.stop()
        ctx.__exit__(None, None, None)



def test_a_patient_talking_to_a_secretary_is_busy_for_alert_calls(tmp_path):
    h, ctx, _ = harness_with_alerts(tmp_path)
    try:
        leg = h.incoming()
        call_id = h.call_id(leg)
        assert not h.controller.patient_busy(call_id)
        h.finish_playing(leg)
        h.finish_playing(leg)
        h.digit(leg, "3")
        h.answered(h.media.last(p.Dial).leg)  # the secretary takes the call
        assert h.controller.patient_busy(call_id) and h.controller.patient_worker(call_id) is None
        h.ended(leg)
        assert not h.controller.patient_busy(call_id)
    finally:
        h.recorder.stop()
        ctx.__exit__(None, None, None)
