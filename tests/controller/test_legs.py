"""The leg router: the pool's observer hands each leg's events to the owner that registered it."""

from __future__ import annotations

from callrouter.controller.legs import LegRouter
from callrouter.media import protocol as p


class Owner:
    def __init__(self, router: LegRouter):
        self.legs = router.owned_by(self)
        self.events: list[tuple[str, object]] = []
        self.lost: list[tuple[str, str, str]] = []

    def handle(self, worker, event):
        self.events.append((worker, event))

    def leg_lost(self, worker, leg, cause):
        self.lost.append((worker, leg, cause))


def test_each_legs_events_go_to_its_owner_and_new_calls_to_the_call_taker():
    router = LegRouter()
    calls, tasks = Owner(router), Owner(router)
    incoming = []
    router.take_calls(lambda worker, ev: incoming.append((worker, ev.leg)))
    calls.legs["c1"] = "call"
    tasks.legs["t1"] = "task"
    router.media_event("w0", p.IncomingCall("c2", "sipcall", "sip:a@b", "sip:c@d", "+33100000001", "+33600000000"))
    router.media_event("w0", p.Digit("c1", "3"))
    router.media_event("w1", p.LegState("t1", "confirmed"))
    router.media_event("w0", p.Ready("w0", 5061, 10, 4242))
    router.leg_lost("w1", "t1", "worker_lost")
    assert incoming == [("w0", "c2")]
    assert calls.events == [("w0", p.Digit("c1", "3"))]
    assert tasks.events == [("w1", p.LegState("t1", "confirmed"))] and tasks.lost == [("w1", "t1", "worker_lost")]


def test_a_forgotten_leg_is_nobodys_and_its_events_are_dropped():
    router = LegRouter()
    owner = Owner(router)
    owner.legs["c1"] = "call"
    owner.legs.pop("c1")
    router.media_event("w0", p.LegEnded("c1", 200, "", "remote"))
    router.media_event("w0", p.Error("c1", "play", "no such file"))  # logged, no owner
    router.leg_lost("w0", "c1", "worker_lost")
    assert owner.events == [] and owner.lost == [] and router.owner_of("c1") is None


def test_a_leg_handed_to_another_owner_stays_his_when_the_first_forgets_it():
    """An alert's practitioner leg bridged with the patient's call belongs to the call from then on:
    the alert forgetting it must not cut the call off from its events."""
    router = LegRouter()
    alerts, calls = Owner(router), Owner(router)
    alerts.legs["alert-1"] = "alert"
    calls.legs["alert-1"] = "call"  # connect_practitioner
    del alerts.legs["alert-1"]  # the alert is done with it
    router.media_event("w0", p.LegEnded("alert-1", 200, "", "remote"))
    assert router.owner_of("alert-1") is calls and len(calls.events) == 1 and alerts.events == []
