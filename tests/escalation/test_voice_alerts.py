"""The alert call's state machine (callrouter.controller.alerts) with a Clock and a fake media pool:
only a key pressed acknowledges; 2 connects the practitioner to the patient."""

from __future__ import annotations

import inspect

import pytest
from twisted.internet.task import Clock

from callrouter.controller import alerts as al
from callrouter.controller.calls import CallController
from callrouter.media import protocol as p
from callrouter.media.pool import MediaPool

TRUNK = "127.0.0.1:5080"
DOCTOR = "+33611111111"
PATIENT = "+33612345678"


class FakePool:
    """Implements alerts.AlertMedia like MediaPool: records dials and commands."""

    def __init__(self, worker: str | None = "w1", refuse: bool = False, refuse_on: tuple[str, ...] = ()):
        self.worker = worker
        self.refuse = refuse
        self.refuse_on = refuse_on
        self.dials: list[tuple[str, p.Dial]] = []
        self.sent: list[p.Command] = []

    def pick(self, legs: int = 1) -> str | None:
        return self.worker

    def dial(self, worker: str, command: p.Dial) -> None:
        if self.refuse or worker in self.refuse_on:
            raise LookupError(f"no ready worker {worker!r}")
        self.dials.append((worker, command))

    def send(self, command: p.Command) -> None:
        self.sent.append(command)

    def plays(self, leg: str) -> list[str]:
        return [c.path.rsplit("/", 1)[-1].removesuffix(".wav") for c in self.sent
                if isinstance(c, p.Play) and c.leg == leg]

    def last(self, kind):
        return [c for c in self.sent if isinstance(c, kind)][-1]


class FakePatients:
    """Implements alerts.LivePatients like CallController."""

    def __init__(self, live: dict[str, str] | None = None):
        self.live = dict(live or {})
        self.busy: set[str] = set()
        self.connected: list[tuple[str, str, str]] = []

    def patient_worker(self, call_id: str) -> str | None:
        return self.live.get(call_id)

    def patient_busy(self, call_id: str) -> bool:
        return call_id in self.busy

    def connect_practitioner(self, call_id: str, worker: str, leg: str) -> bool:
        if self.live.get(call_id) != worker:
            return False
        self.connected.append((call_id, worker, leg))
        return True


def params(f) -> list[str]:
    return [n for n in inspect.signature(f).parameters if n != "self"]


def test_the_fakes_match_the_pool_and_the_controller():
    for name in ("pick", "dial", "send"):
        assert params(getattr(FakePool(), name)) == params(getattr(MediaPool, name))
    for name in ("patient_worker", "patient_busy", "connect_practitioner"):
        assert params(getattr(FakePatients(), name)) == params(getattr(CallController, name))


class Run:
    def __init__(self, patients=None, caller=PATIENT, call_id="call-1", repeats=2, **pool):
        self.clock = Clock()
        self.pool = FakePool(**pool)
        self.alerts = al.AlertCalls(self.clock, self.pool, lambda name, practice: f"/p/{name}.wav",
                                    al.AlertSettings(TRUNK, ring_timeout_s=30, digit_timeout_s=5, repeats=repeats),
                                    patients)
        self.acks: list[str] = []
        self.results: list = []
        self.request = al.AlertRequest("esc-7-0-1", DOCTOR, "cab", "Cabinet Test", "vital", caller, call_id,
                                       practice_prompt="/var/prompts/cab/practice_name-x.wav")
        d = self.alerts.place(self.request, self.acks.append)
        d.addBoth(self.results.append)
        self.worker, self.dial = self.pool.dials[0] if self.pool.dials else (None, None)
        self.leg = self.dial.leg if self.dial else None

    def event(self, ev) -> bool:
        return self.alerts.handle(self.worker, ev)

    def answer(self):
        self.event(p.LegState(self.leg, "ringing"))
        self.event(p.LegState(self.leg, "confirmed"))

    def play_all(self, leg=None):
        """The worker reports the end of each prompt until nothing more is queued."""
        leg = leg or self.leg
        for _ in range(50):
            before = len(self.pool.sent)
            plays = [c for c in self.pool.sent if isinstance(c, p.Play) and c.leg == leg]
            if not plays or plays[-1].loop:
                return
            self.event(p.PlaybackFinished(leg, plays[-1].path))
            if len(self.pool.sent) == before:
                return

    def ended(self, code=200, by="remote", leg=None):
        self.event(p.LegEnded(leg or self.leg, code, "", by))


def test_the_call_goes_to_the_practitioner_through_the_trunk_and_says_the_number_digit_by_digit():
    r = Run()
    assert r.worker == "w1"
    assert r.dial.uri == f"sip:{DOCTOR}@{TRUNK}" and r.dial.display_name == "Cabinet Test"
    assert r.results == []
    r.answer()
    r.play_all()
    assert r.pool.plays(r.leg) == [
        "alert_intro", "practice_name-x", "alert_tier_vital", "alert_callback_number",
        "digit_0", "digit_6", "digit_1", "digit_2", "digit_3", "digit_4", "digit_5", "digit_6", "digit_7",
        "digit_8", "alert_menu"]


def test_pressing_1_acknowledges_then_thanks_and_hangs_up():
    r = Run()
    r.answer()
    r.play_all()
    r.clock.advance(2)
    assert r.event(p.Digit(r.leg, "1"))
    assert r.acks == ["1"] and r.results == [al.ACKNOWLEDGED]
    assert isinstance(r.pool.sent[-2], p.StopPlayback)
    assert r.pool.plays(r.leg)[-1] == "alert_ack_confirm"
    r.event(p.Digit(r.leg, "1"))  # a second press changes nothing
    assert r.acks == ["1"]
    r.play_all()
    assert r.pool.last(p.Hangup).leg == r.leg
    r.ended(by="local")
    assert r.alerts.active() == []


def test_a_key_during_the_message_counts():
    r = Run()
    r.answer()
    r.event(p.PlaybackFinished(r.leg, "/p/alert_intro.wav"))
    r.event(p.Digit(r.leg, "1"))
    assert r.results == [al.ACKNOWLEDGED]


def test_other_keys_are_ignored():
    r = Run()
    r.answer()
    r.play_all()
    r.event(p.Digit(r.leg, "5"))
    r.event(p.Digit(r.leg, "#"))
    assert r.acks == [] and r.results == []


def test_hanging_up_without_a_key_is_not_an_acknowledgement():
    r = Run()
    r.answer()
    r.play_all()
    r.clock.advance(3)
    r.ended(200)
    assert r.acks == [] and r.results == [al.ANSWERED_NO_KEY]
    assert r.alerts.active() == []


def test_a_voicemail_hears_the_message_repeated_then_the_call_ends_unacknowledged():
    r = Run(repeats=2)
    r.answer()
    r.play_all()
    r.clock.advance(5)  # no key after the first message: said again
    r.play_all()
    assert r.pool.plays(r.leg).count("alert_menu") == 2
    r.clock.advance(5)
    r.play_all()
    assert r.pool.plays(r.leg)[-1] == "alert_goodbye"
    assert r.pool.last(p.Hangup).leg == r.leg
    assert r.results == []  # reported when the worker says the leg ended
    r.ended(200, by="local")
    assert r.acks == [] and r.results == [al.ANSWERED_NO_KEY]


def test_no_answer_rings_out_and_is_not_an_acknowledgement():
    r = Run()
    r.event(p.LegState(r.leg, "ringing"))
    r.clock.advance(30)
    assert r.pool.last(p.Hangup) == p.Hangup(r.leg, 487)
    r.ended(487, by="local")
    assert r.results == [al.NO_ANSWER] and r.acks == []


@pytest.mark.parametrize("code, outcome", [(486, al.BUSY), (603, al.BUSY), (480, al.NO_ANSWER),
                                           (404, al.FAILED), (503, al.FAILED)])
def test_refused_calls_report_why(code, outcome):
    r = Run()
    r.ended(code)
    assert r.results == [outcome] and r.acks == []


def test_a_call_that_cannot_be_placed_fails():
    r = Run(worker=None)
    assert r.results[0].check(al.AlertNotPlaced)
    r = Run(refuse=True)
    assert r.results[0].check(al.AlertNotPlaced)
    r = Run()
    r.ended(486, by="worker")  # the worker had no call slot left
    assert r.results[0].check(al.AlertNotPlaced)
    assert r.alerts.active() == []


def test_worker_lost_while_ringing_is_a_failed_call():
    r = Run()
    assert r.alerts.leg_lost(r.worker, r.leg, "worker_lost")
    assert r.results[0].check(al.AlertNotPlaced)  # never got to ring: the next step goes at once
    assert not r.alerts.leg_lost(r.worker, "someone-else", "worker_lost")


def test_worker_lost_mid_message_is_answered_without_a_key():
    r = Run()
    r.answer()
    r.alerts.leg_lost(r.worker, r.leg, "worker_lost")
    assert r.results == [al.ANSWERED_NO_KEY]


def test_pressing_2_with_the_patient_on_the_line_bridges_them_through_the_controller():
    patients = FakePatients({"call-1": "w3"})
    r = Run(patients=patients)
    assert r.worker == "w3"  # dialled from the patient's worker: the conference bridge is per worker
    r.answer()
    r.play_all()
    r.event(p.Digit(r.leg, "2"))
    assert r.acks == ["2"] and r.results == [al.CONNECTED]
    assert r.pool.plays(r.leg)[-1] == "alert_connecting"
    r.play_all()
    assert patients.connected == [("call-1", "w3", r.leg)]
    assert r.alerts.active() == []
    assert not r.event(p.LegEnded(r.leg, 200, "", "remote"))  # the controller's leg from now on


def test_pressing_2_after_the_patient_left_calls_the_patient_back_and_bridges():
    patients = FakePatients({})
    r = Run(patients=patients)
    r.answer()
    r.play_all()
    r.event(p.Digit(r.leg, "2"))
    r.play_all()
    worker, back = r.pool.dials[1]
    assert worker == r.worker and back.uri == f"sip:{PATIENT}@{TRUNK}"
    assert r.pool.plays(r.leg)[-1] == "ringback"
    assert r.event(p.LegState(back.leg, "confirmed"))
    assert r.pool.last(p.Bridge) == p.Bridge(r.leg, back.leg)
    r.clock.advance(120)
    r.event(p.LegEnded(back.leg, 200, "", "remote"))  # the patient hangs up: so is the practitioner
    assert r.pool.last(p.Hangup).leg == r.leg
    r.ended(by="local")
    assert r.results == [al.CONNECTED] and r.alerts.active() == []


def test_a_patient_called_back_who_does_not_answer_is_told_to_the_practitioner():
    r = Run(patients=FakePatients())
    r.answer()
    r.play_all()
    r.event(p.Digit(r.leg, "2"))
    r.play_all()
    _, back = r.pool.dials[1]
    r.clock.advance(30)
    assert r.pool.last(p.Hangup) == p.Hangup(back.leg, 487)
    r.event(p.LegEnded(back.leg, 487, "", "local"))
    assert r.pool.plays(r.leg)[-1] == "alert_patient_unreachable"
    r.play_all()
    assert r.pool.last(p.Hangup).leg == r.leg
    assert r.acks == ["2"]


def test_the_practitioner_hanging_up_while_the_patient_rings_stops_that_call():
    r = Run(patients=FakePatients())
    r.answer()
    r.play_all()
    r.event(p.Digit(r.leg, "2"))
    r.play_all()
    _, back = r.pool.dials[1]
    r.ended(200)
    assert p.Hangup(back.leg, 487) in r.pool.sent
    assert r.alerts.active() == [] and not r.event(p.LegEnded(back.leg, 487, "", "local"))


def test_a_hidden_number_is_said_and_2_cannot_connect():
    r = Run(caller=None, call_id=None)
    r.answer()
    r.play_all()
    assert "alert_number_hidden" in r.pool.plays(r.leg)
    assert not any(n.startswith("digit_") for n in r.pool.plays(r.leg))
    r.event(p.Digit(r.leg, "2"))
    assert r.acks == ["2"] and r.pool.plays(r.leg)[-1] == "alert_no_number"
    assert len(r.pool.dials) == 1


def test_a_missing_prompt_does_not_stall_the_message():
    r = Run()
    r.answer()
    r.event(p.Error("no such file", "play", r.leg))
    assert r.pool.plays(r.leg)[-1] == "practice_name-x"


def test_numbers_said_as_a_french_practitioner_dials_them():
    assert al.national_digits("+33612345678") == "0612345678"
    assert al.national_digits("+4915112345678") == "4915112345678"
    assert al.national_digits(None) == ""


def test_a_chain_acknowledged_elsewhere_stops_a_ringing_alert_call():
    r = Run()
    assert r.alerts.cancel("esc-7-0-1")
    assert r.pool.last(p.Hangup) == p.Hangup(r.leg, 487)
    r.ended(487, by="local")
    assert r.results == [al.CANCELLED] and r.acks == []


def test_a_chain_acknowledged_elsewhere_is_told_to_the_practitioner_listening():
    r = Run()
    r.answer()
    r.event(p.PlaybackFinished(r.leg, "/p/alert_intro.wav"))
    assert r.alerts.cancel("esc-7-0-1")
    assert r.pool.plays(r.leg)[-1] == "alert_already_acknowledged"
    r.event(p.Digit(r.leg, "1"))  # too late: nothing more is recorded
    r.play_all()
    assert r.pool.last(p.Hangup).leg == r.leg
    r.ended(by="local")
    assert r.results == [al.CANCELLED] and r.acks == []


def test_cancelling_after_the_practitioner_pressed_a_key_changes_nothing():
    r = Run()
    r.answer()
    r.event(p.Digit(r.leg, "1"))
    assert not r.alerts.cancel("esc-7-0-1")
    assert not r.alerts.cancel("esc-unknown")
    assert r.pool.plays(r.leg)[-1] == "alert_ack_confirm"


def test_pressing_2_while_the_patient_talks_to_a_secretary_does_not_call_over_it():
    patients = FakePatients()
    patients.busy.add("call-1")
    r = Run(patients=patients)
    r.answer()
    r.play_all()
    r.event(p.Digit(r.leg, "2"))
    r.play_all()
    assert r.acks == ["2"] and len(r.pool.dials) == 1
    assert "alert_patient_busy" in r.pool.plays(r.leg)
    assert r.pool.last(p.Hangup).leg == r.leg


def test_a_full_patient_worker_does_not_keep_the_practitioner_from_being_called():
    r = Run(patients=FakePatients({"call-1": "w3"}))
    assert r.worker == "w3"
    r.ended(486, by="worker")  # no call slot left on the patient's worker
    assert r.results == []
    worker, again = r.pool.dials[1]
    assert worker == "w1" and again.leg == f"{r.leg}-r" and again.uri == r.dial.uri
    r.worker, r.leg = worker, again.leg
    r.answer()
    r.event(p.Digit(r.leg, "1"))
    assert r.results == [al.ACKNOWLEDGED]


def test_a_patient_worker_that_is_down_is_skipped_at_once():
    r = Run(patients=FakePatients({"call-1": "w3"}), refuse_on=("w3",))
    assert r.worker == "w1" and r.results == []


def test_a_second_refusal_by_a_worker_fails_the_call():
    r = Run(patients=FakePatients({"call-1": "w3"}))
    r.ended(486, by="worker")
    r.leg = r.pool.dials[1][1].leg
    r.ended(486, by="worker")
    assert r.results[0].check(al.AlertNotPlaced) and r.alerts.active() == []


def test_pressing_2_when_the_patient_waits_on_another_worker_does_not_ring_the_patient_twice():
    r = Run(patients=FakePatients({"call-1": "w3"}), refuse_on=("w3",))  # placed on w1 instead
    r.answer()
    r.play_all()
    r.event(p.Digit(r.leg, "2"))
    r.play_all()
    assert r.acks == ["2"] and len(r.pool.dials) == 1
    assert "alert_patient_busy" in r.pool.plays(r.leg)
