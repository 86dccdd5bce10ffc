"""Watch calls on a fake media plane and a Clock, through the real leg router and call controller:
what is dialled, how an attempt is decided, and the call coming back released before it becomes a
call (no record, no event, no metric, no queue)."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from callrouter.controller.calls import CallController
from callrouter.controller.desk import Desk
from callrouter.controller.legs import LegRouter
from callrouter.controller.recorder import CallRecorder
from callrouter.controller.settings import ControllerSettings
from callrouter.domain import watch
from callrouter.domain.routing import Router
from callrouter.events.notifier import EventNotifier
from callrouter.events.testing import RecordingPublisher
from callrouter.media import protocol as p
from callrouter.metrics import Metrics
from callrouter.store.calls import CallQuery, CallRepository
from callrouter.store.testing import fresh_database
from callrouter.watch.calls import AttemptRequest, CallSettings, WatchCalls
from tests.controller.conftest import MONDAY_10_PARIS, FakeMedia
from tests.factories import dialplan_text, load_one

NUMBER = "+33100000001"
RANGE = watch.range_numbers("+33180000100", 2)
TRUNK = "127.0.0.1:5080"


class Plane:
    """The watch calls and a call controller on one leg router, as the service tree wires them."""

    def __init__(self, tmp_path):
        self.db_ctx = fresh_database("sqlite", tmp_path)
        db = self.db_ctx.__enter__()
        self.clock = Clock()
        self.clock.advance(MONDAY_10_PARIS.timestamp())
        self.published = RecordingPublisher()
        self.media = FakeMedia(self.published)
        self.legs = LegRouter()
        self.calls_store = CallRepository(db)
        self.recorder = CallRecorder(self.calls_store)
        self.recorder.start()
        self.metrics = Metrics()
        events = EventNotifier(self.published, "n1", self.clock)
        settings = ControllerSettings(secretaries={"*": ("sip:sec1@127.0.0.1:5090",)}, login_required=False,
                                      voicemail_dir=tmp_path / "voicemail")
        self.watch = WatchCalls(self.clock, self.media, CallSettings(TRUNK, RANGE), self.legs)
        router = Router([load_one(tmp_path, dialplan_text(hours='  daily: ["00:00-24:00"]'))])
        desk = Desk(settings, self.clock, self.metrics, events)
        self.controller = CallController(self.clock, self.media, self.recorder, lambda: router,
                                         lambda name, practice: f"/nowhere/{name}.wav", settings, desk, self.legs,
                                         self.metrics, events=events, returns=self.watch.returning)
        self.n = 0

    def close(self):
        self.recorder.stop()
        self.db_ctx.__exit__(None, None, None)

    def place(self, caller=RANGE[0], token="a1b2c3", timeout=30.0, key="7-1"):
        results = []
        self.watch.place(AttemptRequest(key, "test-practice", NUMBER, NUMBER, caller, token, timeout)).addCallback(
            results.append)
        return results

    def arrives(self, caller: str, number: str = NUMBER, name: str = "") -> str:
        self.n += 1
        leg = f"w1-{self.n}"
        self.legs.media_event("w1", p.IncomingCall(leg, f"sip{self.n}", f"sip:{caller}@trunk", f"sip:{number}@edge",
                                                    number, caller, caller_name=name))
        return leg

    def event(self, ev):
        self.legs.media_event("w0", ev)

    def records(self):
        assert self.recorder.flush(10)
        return self.calls_store.query(CallQuery(limit=100))


@pytest.fixture
def plane(tmp_path):
    made = Plane(tmp_path)
    yield made
    made.close()


def test_the_watch_call_dials_the_practice_through_the_trunk_from_the_watch_range(plane):
    plane.place()
    dial = plane.media.last(p.Dial)
    assert dial.uri == f"sip:{NUMBER}@{TRUNK}" and dial.from_user == RANGE[0]
    assert dial.display_name == "Test renvoi a1b2c3" and dial.headers == {"X-Callrouter-Watch": "a1b2c3"}
    assert dial.leg == "watch-7-1" and dial.timeout_seconds == 35.0


def test_the_call_coming_back_passes_and_is_released_before_it_is_a_call(plane):
    results = plane.place()
    plane.event(p.LegState("watch-7-1", "ringing"))
    plane.clock.advance(1.5)
    # The operator presents the number in the national form, the display name lost on the way.
    back = plane.arrives("0180000100")
    assert [(r.outcome, r.rtt_s, r.rang, r.name_kept) for r in results] == [(watch.PASSED, 1.5, True, False)]
    assert plane.media.commands(p.Hangup, back) == [p.Hangup(back, 603)]  # refused before any answer
    assert plane.media.commands(p.Answer, back) == []
    assert plane.media.last(p.Hangup, "watch-7-1").code == 487  # our call stops ringing
    assert plane.controller.sessions == {} and plane.records() == []
    assert not plane.published.on("/state") and plane.metrics.active_calls._value.get() == 0


def test_the_token_in_the_display_name_is_noticed_when_the_network_keeps_it(plane):
    results = plane.place()
    plane.arrives(RANGE[0], name="Test renvoi a1b2c3")
    assert results[0].name_kept is True


def test_a_call_back_to_another_number_or_from_another_range_number_does_not_pass(plane):
    results = plane.place(caller=RANGE[0])
    other_number = plane.arrives(RANGE[0], number="+33100000009")
    other_caller = plane.arrives(RANGE[1])
    assert results == []  # still waiting for its own call back
    # Both released all the same: nobody but the watch calls from the range.
    assert plane.media.last(p.Hangup, other_number).code == 603 and plane.media.last(p.Hangup, other_caller).code == 603
    assert plane.records() == []


def test_a_patient_s_call_is_not_the_watch_s(plane):
    leg = plane.arrives("+33612345678")
    assert plane.controller.sessions[leg].practice == "test-practice"
    assert plane.media.commands(p.Answer, leg) == [p.Answer(leg)]


def test_the_line_answering_is_answered_by_someone_and_hung_up_at_once(plane):
    results = plane.place()
    plane.event(p.LegState("watch-7-1", "ringing"))
    plane.event(p.LegState("watch-7-1", "confirmed"))
    assert [(r.outcome, r.rang) for r in results] == [(watch.ANSWERED, True)]
    assert plane.media.last(p.Hangup, "watch-7-1").code == 480  # a BYE: it was answered


@pytest.mark.parametrize("code, by, outcome", [(486, "remote", watch.BUSY), (404, "remote", watch.REFUSED),
                                               (480, "remote", watch.UNANSWERED), (486, "worker", watch.NOT_PLACED)])
def test_the_line_ending_the_call_says_what_was_seen(plane, code, by, outcome):
    results = plane.place()
    plane.event(p.LegEnded("watch-7-1", code, "", by))
    assert [(r.outcome, r.sip_code) for r in results] == [(outcome, code)]
    assert plane.watch.numbers_under_way() == set()


def test_no_call_back_within_the_limit(plane):
    silent = plane.place(timeout=10)
    plane.clock.advance(9.9)
    assert silent == []
    plane.clock.advance(0.2)
    assert silent[0].outcome == watch.NO_RETURN and plane.media.last(p.Hangup, "watch-7-1").code == 487
    plane.event(p.LegEnded("watch-7-1", 487, "", "local"))
    ringing = plane.place(timeout=10, key="8-1")
    plane.event(p.LegState("watch-8-1", "ringing"))
    plane.clock.advance(10.1)
    assert ringing[0].outcome == watch.UNANSWERED


def test_a_number_stays_under_way_until_its_leg_has_ended(plane):
    plane.place()
    plane.arrives(RANGE[0])
    assert plane.watch.numbers_under_way() == {NUMBER}  # decided, its leg still being hung up
    assert plane.place(key="7-2")[0].outcome == watch.NOT_PLACED  # never twice at once
    plane.event(p.LegEnded("watch-7-1", 487, "", "local"))
    assert plane.watch.numbers_under_way() == set() and plane.watch.callers_under_way() == set()


def test_a_leg_that_never_ends_frees_its_number_after_the_guard(plane):
    plane.place()
    plane.arrives(RANGE[0])
    plane.clock.advance(watch.GUARD_S + 0.1)
    assert plane.watch.numbers_under_way() == set()


def test_no_worker_with_room_is_not_placed(plane, monkeypatch):
    monkeypatch.setattr(plane.media, "pick", lambda legs=1: None)
    assert plane.place()[0].outcome == watch.NOT_PLACED and plane.media.commands(p.Dial) == []
