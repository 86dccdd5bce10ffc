"""The watch service on a Clock, with the real store (SQLite), the real watch calls on a fake media
plane and recording channels: the slot's call goes out at its instant, a pass is stored with its
round-trip time, a failure is retried once then alerts each contact once, the gauge and the events
follow, and the kill switch, the budget, the one-call-per-number rule and restarts hold."""

from __future__ import annotations

import datetime as dt

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock

from callrouter.controller.legs import LegRouter
from callrouter.domain import watch
from callrouter.domain.watch_views import WatchRefused
from callrouter.escalation.ports import ChannelError
from callrouter.events.notifier import EventNotifier
from callrouter.events.testing import RecordingPublisher
from callrouter.media import protocol as p
from callrouter.metrics import Metrics
from callrouter.store.testing import fresh_database
from callrouter.store.watch import WatchRepository
from callrouter.watch.alerts import WatchAlerts
from callrouter.watch.calls import CallSettings, WatchCalls
from callrouter.watch.service import WatchService
from callrouter.watch.settings import WatchSettings
from tests.controller.conftest import FakeMedia
from tests.factories import dialplan_text, load_one

UTC = dt.timezone.utc
NUMBER = "+33100000001"
FIRST = "+33180000100"
SETTINGS = WatchSettings(enabled=True, caller_number=FIRST, caller_range=3, tick_seconds=5)
SECRETARIAT = (("email", "supervision@telesecretariat.example"), ("sms", "+33611111111"))
WATCH = """\
watch:
  forwarding: {forwarding}
  at: ["03:10"]
  timeout: 20s
  retry_after: 60s
  contacts: {{email: cabinet@example.fr, sms: "+33622222222"}}
"""
MONDAY = dt.datetime(2026, 6, 1, 0, 0, tzinfo=UTC)  # 02:00 in Paris


class Outbox:
    """A channel that records what it is given (`fail`: refuses the next ones)."""

    def __init__(self):
        self.messages, self.fail = [], False

    def send(self, message):
        if self.fail:
            return defer.fail(ChannelError("gateway answered HTTP 500"))
        self.messages.append(message)
        return defer.succeed(f"id-{len(self.messages)}")


def run_sync(f, *args):
    return defer.maybeDeferred(f, *args)


class World:
    def __init__(self, tmp_path, forwarding="always", settings=SETTINGS, start=MONDAY, db=None):
        self.tmp_path = tmp_path
        tmp_path.mkdir(parents=True, exist_ok=True)
        if db is None:
            self._db_ctx = fresh_database("sqlite", tmp_path)
            db = self._db_ctx.__enter__()
        self.db = db
        self.dialplan = load_one(tmp_path, dialplan_text(extra=WATCH.format(forwarding=forwarding)))
        self.clock = Clock()
        self.clock.advance(start.timestamp())
        self.published = RecordingPublisher()
        events = EventNotifier(self.published, "n1", self.clock)
        self.store = WatchRepository(db, "n1", on_change=events.watch_changed)
        self.media = FakeMedia(self.published)
        self.legs = LegRouter()
        self.calls = WatchCalls(self.clock, self.media, CallSettings("127.0.0.1:5080",
                                                                     watch.range_numbers(FIRST, 3)), self.legs)
        self.legs.take_calls(self.calls.returning)  # the call controller's hook (tests/watch/test_calls.py)
        self.channels = {"sms": Outbox(), "email": Outbox()}
        alerts = WatchAlerts(self.store, self.channels, run_sync, self.clock,
                             lambda practice: ("Cabinet de test", "Europe/Paris"))
        self.metrics = Metrics()
        self.service = WatchService(settings, lambda: {self.dialplan.practice: self.dialplan}, self.store,
                                    self.calls, alerts, self.clock, run_sync, self.metrics, SECRETARIAT)
        self.service.startService()

    def planned(self) -> watch.PlannedWatch:
        return watch.plan(self.dialplan, MONDAY, MONDAY + dt.timedelta(days=1), 4)[0]

    def advance_to(self, moment: dt.datetime, step: float = 1.0) -> None:
        while self.clock.seconds() < moment.timestamp():
            self.clock.advance(step)

    def dials(self):
        return self.media.commands(p.Dial)

    def comes_back(self, dial: p.Dial) -> None:
        self.legs.media_event("w1", p.IncomingCall("w1-1", "c", "", "", NUMBER, dial.from_user))
        self.legs.media_event("w0", p.LegEnded(dial.leg, 487, "", "local"))

    def ends(self, dial: p.Dial, code: int) -> None:
        self.legs.media_event("w0", p.LegEnded(dial.leg, code, "", "remote"))

    def gauge(self) -> float:
        return self.metrics.watch_failing.labels("test-practice")._value.get()

    def count(self, outcome: str) -> float:
        return self.metrics.watch_calls.labels("test-practice", outcome)._value.get()

    def watch_events(self):
        return [(s.payload["state"], s.payload["alarm"]) for s in self.published.on("/forwarding-watch")]

    def close(self):
        self.service.stopService()
        if getattr(self, "_db_ctx", None):
            self._db_ctx.__exit__(None, None, None)


@pytest.fixture
def world(tmp_path):
    made = []

    def build(**kw):
        w = World(tmp_path / f"w{len(made)}", **kw)
        made.append(w)
        return w

    yield build
    for w in reversed(made):
        w.close()


def test_the_slot_s_call_goes_out_at_its_instant_and_passes_when_it_comes_back(world):
    w = world()
    planned = w.planned()
    w.clock.advance(planned.at.timestamp() - 30 - w.clock.seconds())
    w.advance_to(planned.at - dt.timedelta(seconds=1))
    assert w.dials() == []
    while not w.dials():
        w.clock.advance(1)
    dialled = w.clock.seconds()
    assert planned.at.timestamp() <= dialled <= planned.at.timestamp() + SETTINGS.tick_seconds
    [dial] = w.dials()
    assert dial.from_user == FIRST and dial.uri == f"sip:{NUMBER}@127.0.0.1:5080"
    w.clock.advance(2.5)
    w.comes_back(dial)
    [run] = w.store.runs()
    assert (run.state, run.outcome, run.slot_key, run.trigger) == ("passed", "passed", planned.key, "schedule")
    assert run.rtt_ms == 2500 and [a.outcome for a in run.attempts] == ["passed"]
    assert w.gauge() == 0 and w.count("passed") == 1
    assert w.watch_events() == [("calling", False), ("passed", False)]
    assert all(o.messages == [] for o in w.channels.values())
    w.advance_to(planned.at + dt.timedelta(minutes=30))
    assert len(w.dials()) == 1  # the slot ran once


def test_a_failure_is_tried_once_more_then_alerts_each_contact_once(world):
    w = world()
    started = w.service.run_now("test-practice", None, "sophie")
    assert (started.result.state, started.result.trigger) == ("calling", "sophie")
    first = w.dials()[0]
    w.ends(first, 486)
    assert all(o.messages == [] for o in w.channels.values())  # not yet: one retry first
    w.clock.advance(59)
    assert len(w.dials()) == 1
    w.clock.advance(1)
    second = w.dials()[1]
    assert second.from_user == first.from_user and second.leg == "watch-1-2"
    w.clock.advance(20)  # silent: no call back within the limit
    [view] = w.store.runs()
    assert (view.state, view.outcome) == ("failed", "no_return")
    assert [(a.n, a.outcome, a.sip_code) for a in view.attempts] == [(1, "busy", 486), (2, "no_return", None)]
    sms, mail = w.channels["sms"].messages, w.channels["email"].messages
    assert sorted(m.to for m in sms) == ["+33611111111", "+33622222222"]
    assert sorted(m.to for m in mail) == ["cabinet@example.fr", "supervision@telesecretariat.example"]
    assert mail[0].subject == "[ALERTE] Cabinet de test : le renvoi d'appel de la ligne 01 00 00 00 01 ne fonctionne plus"
    assert "essai 1 : ligne occupée; essai 2 : l'appel n'est pas revenu" in mail[0].text
    assert "Vérifiez le renvoi auprès de l'opérateur." in sms[0].text and len(sms[0].text) < 320
    assert w.gauge() == 1 and w.count("busy") == 1 and w.count("no_return") == 1
    assert w.watch_events()[-1] == ("failed", True)
    w.service._alerts.flush()
    assert len(sms) == 2 and len(mail) == 2  # once each
    assert [a.state for a in w.store.get(view.id).alerts] == ["sent"] * 4


def test_a_pass_on_the_retry_is_a_pass_and_alerts_nobody(world):
    w = world()
    w.service.run_now("test-practice", NUMBER, "sophie")
    w.legs.media_event("w0", p.LegState(w.dials()[0].leg, "confirmed"))  # the practice answered itself
    w.ends(w.dials()[0], 200)
    w.clock.advance(60)
    w.comes_back(w.dials()[1])
    [view] = w.store.runs()
    assert view.state == "passed" and [a.outcome for a in view.attempts] == ["answered", "passed"]
    assert all(o.messages == [] for o in w.channels.values()) and w.gauge() == 0


def test_an_alert_the_gateway_refused_is_sent_at_the_next_flush(world):
    w = world()
    w.channels["sms"].fail = True
    w.service.run_now("test-practice", None, "sophie")
    w.ends(w.dials()[0], 486)
    w.clock.advance(60)
    w.ends(w.dials()[1], 486)
    assert w.channels["sms"].messages == [] and len(w.channels["email"].messages) == 2
    w.channels["sms"].fail = False
    w.clock.advance(60)  # the service tries them again every minute
    assert len(w.channels["sms"].messages) == 2 and len(w.channels["email"].messages) == 2


def test_the_kill_switch_stops_every_watch_call(world):
    w = world(settings=WatchSettings(enabled=False, caller_number=FIRST))
    planned = w.planned()
    w.advance_to(planned.at + dt.timedelta(minutes=5), step=5)
    assert w.dials() == [] and w.store.runs() == []
    assert "désactivée" in refusal(w.service.run_now("test-practice", None, "sophie"))


def refusal(d: defer.Deferred) -> str:
    got = []
    d.addErrback(lambda f: got.append(f.trap(WatchRefused) and f.getErrorMessage()))
    assert got, "not refused"
    return got[0]


def test_one_number_is_never_called_twice_at_once(world):
    w = world()
    w.service.run_now("test-practice", None, "sophie")
    assert "déjà en cours" in refusal(w.service.run_now("test-practice", None, "paul"))
    w.ends(w.dials()[0], 486)
    w.clock.advance(60)
    assert len(w.dials()) == 2  # its own retry, once the first leg had ended


def test_closed_forwarding_is_not_tested_while_the_practice_is_open(world):
    open_monday = dt.datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # 10:00 in Paris
    w = world(forwarding="closed", start=open_monday)
    assert "le cabinet est ouvert" in refusal(w.service.run_now("test-practice", None, "sophie"))
    assert w.dials() == []
    w.clock.advance(3 * 3600)  # 13:00: the lunch break
    w.service.run_now("test-practice", None, "sophie")
    assert len(w.dials()) == 1


def test_the_day_budget_holds(world):
    w = world()
    for _ in range(2):
        w.service.run_now("test-practice", None, "sophie")
        w.comes_back(w.dials()[-1])
    assert "nombre d'appels de test du jour" in refusal(w.service.run_now("test-practice", None, "sophie"))
    assert len(w.dials()) == 2


def test_after_a_restart_a_claimed_slot_is_not_run_again_and_the_gauge_comes_back(world, tmp_path):
    w = world()
    planned = w.planned()
    w.clock.advance(planned.at.timestamp() - w.clock.seconds())
    w.clock.advance(SETTINGS.tick_seconds)
    assert len(w.dials()) == 1  # ...and the service stops while the call rings
    again = world(db=w.db, start=planned.at + dt.timedelta(seconds=30))
    assert [r.state for r in again.store.runs()] == ["interrupted"]
    again.clock.advance(SETTINGS.tick_seconds * 2)
    assert again.dials() == []
    failed = again.service.run_now("test-practice", None, "sophie")
    again.ends(again.dials()[0], 486)
    again.clock.advance(60)
    again.ends(again.dials()[1], 486)
    assert failed.result.state == "calling"
    third = world(db=w.db, start=planned.at + dt.timedelta(minutes=5))
    assert third.gauge() == 1  # the last verdict, read back from the store


def test_a_call_our_media_plane_could_not_place_gives_no_verdict_and_alerts_nobody(world, monkeypatch):
    w = world()
    monkeypatch.setattr(w.media, "pick", lambda legs=1: None)
    w.service.run_now("test-practice", None, "sophie")
    w.clock.advance(61)
    [view] = w.store.runs()
    assert (view.state, view.outcome, view.alerts) == ("interrupted", "not_placed", ())
    assert [a.outcome for a in view.attempts] == ["not_placed", "not_placed"]
    assert all(o.messages == [] for o in w.channels.values())
    assert w.gauge() != w.gauge()  # NaN: no verdict yet, so no alert rule compares true


def test_the_schedule_is_read_only_once_calls_can_be_placed(tmp_path):
    ready = defer.Deferred()
    w = World(tmp_path)
    w.service.stopService()
    w.service = WatchService(SETTINGS, lambda: {w.dialplan.practice: w.dialplan}, w.store, w.calls,
                             w.service._alerts, w.clock, run_sync, w.metrics, SECRETARIAT, when_ready=lambda: ready)
    planned = w.planned()
    w.clock.advance(planned.at.timestamp() - w.clock.seconds())
    w.service.startService()
    w.clock.advance(30)
    assert w.dials() == []
    ready.callback(None)  # the media workers are ready
    w.clock.advance(SETTINGS.tick_seconds)
    assert len(w.dials()) == 1  # the slot, still within its catch-up
    w.close()


def test_another_node_s_pass_clears_this_node_s_gauge_within_a_minute(world):
    w = world()
    w.service.run_now("test-practice", None, "sophie")
    w.ends(w.dials()[0], 486)
    w.clock.advance(60)
    w.ends(w.dials()[1], 486)
    assert w.gauge() == 1
    other = WatchRepository(w.db, "n2")
    now = dt.datetime.fromtimestamp(w.clock.seconds(), UTC)
    run = other.start_run("n2-slot", "test-practice", NUMBER, NUMBER, FIRST, "t", "schedule", now, now,
                          watch.local_day_bounds("Europe/Paris", now), 48)
    other.finish(run.id, "passed", "passed", now, rtt_ms=900)
    w.clock.advance(61)
    assert w.gauge() == 0


def test_a_run_waiting_for_its_retry_when_the_service_stops_ends_interrupted_and_alerts_nobody(world):
    w = world()
    w.service.run_now("test-practice", None, "sophie")
    w.ends(w.dials()[0], 486)
    w.service.stopService()
    w.clock.advance(61)
    [view] = w.store.runs()
    assert (view.state, view.alerts) == ("interrupted", ())
    assert len(w.dials()) == 1 and all(o.messages == [] for o in w.channels.values())
