"""The voice channel in the engine: a `call` step places an alert call; only a key acknowledges
(recorded with via "call"); other outcomes keep the step's wait; a call not placed moves on at once;
a restart never places the same call twice. Real database, Clock, fake alert calls."""

from __future__ import annotations

import pytest
from twisted.internet import defer

from callrouter.controller import alerts as al
from callrouter.domain.model import EscalationStep, EscalationTier
from callrouter.escalation.channels import OutboxFileChannel, build_channels
from callrouter.escalation.voice import CallMessage, PracticeNames, VoiceChannel
from callrouter.store.escalations import EscalationRepository
from tests.escalation.support import SETTINGS, FakeChannel, clock_at, dialplan, make_engine, replace, sync

TIER = EscalationTier("urgent", (EscalationStep("call", "on_call", wait_s=120),
                                 EscalationStep("sms", "backup", wait_s=60)))
PLAN = dialplan(escalation={"urgent": TIER})


class FakeAlerts:
    """Implements escalation.ports.AlertPlacer like controller.alerts.AlertCalls: the test decides outcomes."""

    def __init__(self):
        self.placed: list[tuple[al.AlertRequest, object, defer.Deferred]] = []
        self.cancelled: list[str] = []

    def place(self, request, acknowledge):
        d = defer.Deferred()
        self.placed.append((request, acknowledge, d))
        return d

    def cancel(self, key):
        self.cancelled.append(key)
        return True


def test_the_fake_matches_the_alert_calls():
    import inspect

    for name in ("place", "cancel"):
        assert list(inspect.signature(getattr(FakeAlerts(), name)).parameters) == \
            list(inspect.signature(getattr(al.AlertCalls, name)).parameters)[1:]


class Setup:
    def __init__(self, db, clock=None, alerts=None, media_plane=True):
        self.db = db
        self.clock = clock or clock_at()
        self.sms = FakeChannel()
        self.alerts = alerts or FakeAlerts()
        self.voice = VoiceChannel(self.clock, sync, self.alerts if media_plane else None, EscalationRepository(db))
        self.engine, self.registry = make_engine(db, {"sms": self.sms, "call": self.voice}, self.clock, PLAN)
        self.engine.startService()

    def start(self, call_id="call-1", caller="+33612345678"):
        results = []
        self.engine.start(call_id, PLAN, "urgent", caller).addCallback(results.append)
        return results[0]

    def view(self, eid):
        return EscalationRepository(self.db).get(eid)


def test_a_call_step_places_an_alert_call_with_what_it_must_say(db):
    s = Setup(db)
    eid = s.start()
    [(request, _, _)] = s.alerts.placed
    assert request == al.AlertRequest(f"esc-{eid}-0-0", "+33611111111", "cab", "Cabinet Test", "urgent",
                                      "+33612345678", "call-1", None)
    assert s.view(eid).steps[0].state == "sending"  # claimed before the call; the call is under way
    assert s.sms.sent == []


def test_pressing_1_acknowledges_via_call_and_the_chain_stops(db):
    s = Setup(db)
    eid = s.start()
    _, acknowledge, d = s.alerts.placed[0]
    s.clock.advance(40)
    acknowledge("1")
    d.callback(al.ACKNOWLEDGED)
    view = s.view(eid)
    assert (view.outcome, view.acknowledged_by, view.acknowledged_via) == ("acknowledged", "dr-martin", "call")
    assert view.steps[0].state == "delivered" and view.steps[0].provider_id == f"esc-{eid}-0-0/acknowledged"
    assert view.steps[0].outcome == "acknowledged"
    assert s.registry.get_sample_value("callrouter_escalations_acknowledged_total",
                                       {"practice": "cab", "tier": "urgent"}) == 1
    s.clock.advance(3600)
    assert s.sms.sent == [] and s.engine.active_ids() == []


@pytest.mark.parametrize("outcome", [al.NO_ANSWER, al.BUSY, al.FAILED, al.ANSWERED_NO_KEY])
def test_a_call_without_a_key_is_no_acknowledgement_and_the_next_step_follows_the_wait(db, outcome):
    """Answered without a key (a voicemail answers like a person) is `sent`, never `delivered`:
    only a key proves someone heard the alert. The step says what happened."""
    s = Setup(db)
    eid = s.start()
    s.clock.advance(45)  # the call rang or spoke for 45 s
    s.alerts.placed[0][2].callback(outcome)
    view = s.view(eid)
    assert view.acknowledged_at is None and view.state == "active"
    assert view.steps[0].state == "sent" and view.steps[0].provider_id.endswith("/" + outcome)
    assert view.steps[0].outcome == outcome
    assert view.to_json()["steps"][0]["outcome"] == outcome
    s.clock.advance(119)
    assert s.sms.sent == []
    s.clock.advance(1)  # the step's wait runs from the end of the call
    assert [m.to for m in s.sms.sent] == ["+33622222222"]


def test_a_call_that_cannot_be_placed_is_a_channel_failure_and_the_next_step_goes_at_once(db):
    s = Setup(db)
    eid = s.start()
    s.alerts.placed[0][2].errback(al.AlertNotPlaced("no media worker has room for the call"))
    view = s.view(eid)
    assert view.steps[0].state == "failed" and "no media worker" in view.steps[0].error
    assert [m.to for m in s.sms.sent] == ["+33622222222"]
    assert s.registry.get_sample_value("callrouter_escalation_step_failures_total",
                                       {"practice": "cab", "tier": "urgent", "channel": "call"}) == 1


def test_without_alert_calls_wired_the_step_fails_rather_than_hangs(db):
    s = Setup(db, media_plane=False)
    eid = s.start()
    assert s.view(eid).steps[0].state == "failed"
    assert len(s.sms.sent) == 1


def test_a_restart_during_the_call_never_places_it_again(db):
    s = Setup(db)
    eid = s.start()
    s.clock.advance(20)
    s.engine.stopService()  # the process dies while the practitioner's phone rings
    s.clock.advance(10)
    again = Setup(db, s.clock)
    assert again.alerts.placed == []
    assert again.view(eid).steps[0].state == "unknown"
    again.clock.advance(90)  # the step's wait counts from when it was claimed
    assert [m.to for m in again.sms.sent] == ["+33622222222"]


def test_a_late_key_after_someone_else_acknowledged_changes_nothing(db):
    s = Setup(db)
    eid = s.start()
    EscalationRepository(db).acknowledge(eid, "user:sec", "api", s.engine.now())
    _, acknowledge, d = s.alerts.placed[0]
    acknowledge("1")
    d.callback(al.ACKNOWLEDGED)
    assert s.view(eid).acknowledged_via == "api"


def test_no_phone_number_in_metric_labels(db):
    s = Setup(db)
    s.start()
    s.alerts.placed[0][2].errback(al.AlertNotPlaced("x"))
    text = "".join(str(m) for m in s.registry.collect())
    assert "33611111111" not in text and "33612345678" not in text


def test_the_voice_channel_refuses_a_plain_message(db):
    from callrouter.escalation.messages import Message

    voice = VoiceChannel(clock_at(), sync, FakeAlerts(), EscalationRepository(db))
    failures = []
    voice.send(Message("call", "+33611111111", "s", "t", "k")).addErrback(failures.append)
    assert failures and "call message" in failures[0].getErrorMessage()


def test_the_practice_name_is_spoken_once_into_var_and_a_recording_wins(tmp_path):
    spoken = []

    def speak(text, target):
        spoken.append(text)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"RIFF")

    recorded = {"rec": tmp_path / "recorded.wav"}
    names = PracticeNames(tmp_path / "var", lambda practice: recorded.get(practice), sync, speak)
    got = []
    names.path_for("cab", "Cabinet  Test").addCallback(got.append)
    names.path_for("cab", "Cabinet Test").addCallback(got.append)
    assert spoken == ["Cabinet  Test"] and got[0] == got[1] and got[0].startswith(str(tmp_path / "var" / "cab"))
    names.path_for("cab", "Cabinet Renommé").addCallback(got.append)
    assert len(spoken) == 2 and got[2] != got[0]
    names.path_for("rec", "Ignored").addCallback(got.append)
    assert got[3] == str(tmp_path / "recorded.wav") and len(spoken) == 2
    names.path_for("../x", "Evil").addCallback(got.append)
    assert got[4] is None


def test_a_name_that_cannot_be_spoken_is_left_out(tmp_path):
    def speak(text, target):
        raise RuntimeError("espeak-ng is not installed")

    got = []
    PracticeNames(tmp_path, lambda practice: None, sync, speak).path_for("cab", "Cabinet").addCallback(got.append)
    assert got == [None]


def test_the_voice_channel_serves_call_steps_only_when_voice_calls_are_on(tmp_path, db):
    voice = VoiceChannel(clock_at(), sync, FakeAlerts(), EscalationRepository(db))
    on = replace(SETTINGS, voice_calls=True, outbox_file=tmp_path / "outbox.jsonl")
    assert build_channels(on, clock_at(), sync, voice)["call"] is voice
    assert isinstance(build_channels(on, clock_at(), sync, voice)["sms"], OutboxFileChannel)
    assert "call" not in build_channels(replace(on, voice_calls=False), clock_at(), sync, voice)
    assert "call" not in build_channels(on, clock_at(), sync, None)


def test_the_call_message_keeps_the_plain_message_fields():
    from callrouter.escalation.messages import Message
    from callrouter.escalation.voice import call_message

    m = call_message(Message("call", "+33611111111", "s", "t", "k"), 7, "dr-a", "cab", "Cab", "vital",
                     None, None)
    assert isinstance(m, CallMessage) and (m.to, m.key, m.escalation_id) == ("+33611111111", "k", 7)


def test_the_next_step_is_never_sent_before_the_key_is_stored(db):
    """A call step without a wait: its outcome is reported only once the acknowledgement is stored,
    so the engine, reading the chain next, sees it and sends nothing more."""
    from callrouter.escalation import voice as v

    tier = EscalationTier("urgent", (EscalationStep("call", "on_call", wait_s=0), EscalationStep("sms", "backup")))
    plan = dialplan(escalation={"urgent": tier})
    clock = clock_at()
    pending = []

    def slow(f, *a):  # the store's thread pool, released by the test
        if f.__name__ == "acknowledge":
            d = defer.Deferred()
            pending.append((d, f, a))
            return d
        return sync(f, *a)

    sms, alerts = FakeChannel(), FakeAlerts()
    voice = v.VoiceChannel(clock, slow, alerts, EscalationRepository(db))
    engine, _ = make_engine(db, {"sms": sms, "call": voice}, clock, plan)
    engine.startService()
    results = []
    engine.start("call-1", plan, "urgent", "+33612345678").addCallback(results.append)
    _, acknowledge, d = alerts.placed[0]
    acknowledge("1")
    d.callback(al.ACKNOWLEDGED)
    assert sms.sent == []
    [(ack, f, args)] = pending
    ack.callback(f(*args))
    assert sms.sent == [] and EscalationRepository(db).get(results[0]).acknowledged_via == "call"


def test_an_acknowledgement_by_link_stops_the_alert_call_under_way(db):
    from callrouter.escalation.ack import Acknowledger
    from tests.escalation.support import SECRET

    s = Setup(db)
    eid = s.start()
    acks = Acknowledger(EscalationRepository(db), SECRET, s.engine.acknowledged)
    acks.by_user(eid, "sec", s.engine.now())
    assert s.alerts.cancelled == [f"esc-{eid}-0-0"]
    s.alerts.placed[0][2].callback(al.CANCELLED)
    view = s.view(eid)
    assert view.acknowledged_via == "api" and view.steps[0].state == "sent"
    s.clock.advance(3600)
    assert s.sms.sent == []


def test_a_finished_call_is_not_cancelled_later(db):
    s = Setup(db)
    eid = s.start()
    s.alerts.placed[0][2].callback(al.NO_ANSWER)
    EscalationRepository(db).acknowledge(eid, "user:sec", "api", s.engine.now())
    s.engine.acknowledged(s.view(eid))
    assert s.alerts.cancelled == []
