"""Secretaries in the controller: logging in and out, pauses, strategies, shared lines, and the state
they keep across a restart. Media is faked (the commands a worker would get); records go to SQLite."""

from __future__ import annotations

import dataclasses
import json

import pytest

from callrouter.ports import SecretaryStateError, UnknownSecretary
from callrouter.media import protocol as p
from tests.controller.test_calls import busy_secretary, queued_call
from tests.factories import examples

MARTIN, MSP = "cabinet-dr-martin", "msp-val-de-moselle"
MSP_NUMBER = "+33387000100"
EDGE = "edge:5060"


def tuned(practice: str = MARTIN, **changes):
    """The example dialplans, with the `general` queue of `practice` changed."""
    plans = examples()
    d = plans[practice]
    plans[practice] = dataclasses.replace(d, queues={**d.queues, "general": dataclasses.replace(d.queues["general"], **changes)})
    return list(plans.values())


def states(h, who):
    return [m.payload["state"] for m in h.published.on(f"/secretaries/{who}/state")]


def dialled(h):
    return [c.uri.split("@")[0].removeprefix("sip:") for c in h.media.commands(p.Dial)]


# --- logging in and out -----------------------------------------------------------------------------

def test_a_registered_secretary_is_offered_calls_only_once_logged_in(make):
    h = make(secretaries={"*": ("alice",)}, secretary_domain=EDGE, login_required=True)
    h.desk.registrations_changed(frozenset({"alice"}))
    alice = h.desk.secretary("alice")
    assert alice.state == "offline" and not alice.reachable
    first = queued_call(h)
    assert h.media.prompts(first)[-1] == "callback_offer"  # nobody logged in: overflow at once
    h.desk.login("alice")
    assert alice.state == "available" and states(h, "alice")[-1] == "available"
    queued_call(h)
    assert dialled(h) == ["alice"]


def test_logging_in_picks_up_a_call_already_waiting_and_logging_out_stops_new_offers(make):
    h = make(secretaries={"*": ("alice", "bob")}, secretary_domain=EDGE, login_required=True)
    h.desk.registrations_changed(frozenset({"alice", "bob"}))
    h.desk.login("bob")
    busy = busy_secretary(h)  # bob takes a first call
    waiting = queued_call(h)
    assert h.controller.sessions[waiting].state.value == "queued"
    h.desk.login("alice")
    assert h.controller.sessions[waiting].state.value == "ringing" and dialled(h) == ["bob", "alice"]
    h.answered(h.media.last(p.Dial).leg)
    h.desk.logout("bob")  # on a call: it goes on, but nothing new after it
    assert h.desk.secretary("bob").state == "on_call"
    h.ended(busy)
    h.clock.advance(60)
    assert h.desk.secretary("bob").state == "offline"
    queued_call(h)
    assert dialled(h) == ["bob", "alice"]  # alice is on a call, bob logged out: the call waits


def test_a_logged_in_secretary_whose_softphone_is_off_is_offline(make):
    h = make(secretaries={"*": ("alice",)}, secretary_domain=EDGE, login_required=True)
    h.desk.login("alice")
    assert h.desk.secretary("alice").state == "offline"
    h.desk.registrations_changed(frozenset({"alice"}))
    assert h.desk.secretary("alice").state == "available"


def test_unknown_secretaries_and_fixed_phones_cannot_log_out(make):
    h = make(secretaries={"*": ("sip:accueil@192.0.2.10",)})
    with pytest.raises(UnknownSecretary):
        h.desk.login("mallory")
    with pytest.raises(SecretaryStateError):
        h.desk.logout("sip:accueil@192.0.2.10")


# --- pauses ----------------------------------------------------------------------------------------

def test_a_paused_secretary_is_skipped_and_says_why_until_she_resumes(make):
    h = make(secretaries={"*": ("alice", "bob")}, secretary_domain=EDGE)
    h.desk.registrations_changed(frozenset({"alice", "bob"}))
    h.desk.pause("alice", "pause déjeuner")
    paused = [m.payload for m in h.published.on("/secretaries/alice/state")][-1]
    assert paused["state"] == "paused" and paused["reason"] == "pause déjeuner"
    queued_call(h)
    queued_call(h)
    assert dialled(h) == ["bob"]  # the second call waits for bob rather than ringing alice
    h.desk.resume("alice")
    assert dialled(h) == ["bob", "alice"]


def test_a_fixed_phone_missing_offers_is_paused_and_resumed_through_the_controller(make):
    phone = "sip:accueil@192.0.2.10"
    h = make(secretaries={"*": (phone,)}, max_missed_offers=2)
    queued_call(h)
    h.clock.advance(20)
    h.clock.advance(20)
    secretary = h.desk.secretary(phone)
    assert secretary.state == "paused" and secretary.paused == "2 appels manqués d'affilée"
    dials = len(dialled(h))
    h.clock.advance(30)  # the call still waits (overflow after 90 s): the phone is not rung again
    assert len(dialled(h)) == dials
    h.desk.resume(phone)
    assert len(dialled(h)) == dials + 1 and secretary.missed == 0


def test_logins_and_pauses_survive_a_restart(make, tmp_path):
    state = tmp_path / "secretaries.json"
    h = make(secretaries={"*": ("alice", "bob", "sip:accueil@192.0.2.10")}, secretary_domain=EDGE,
             login_required=True, state_file=state)
    h.desk.login("alice")
    h.desk.login("bob")
    h.desk.pause("bob", "réunion")
    h.desk.pause("sip:accueil@192.0.2.10", "poste en panne")
    saved = json.loads(state.read_text())
    assert saved["alice"] == {"logged_in": True, "paused": None, "auto_paused": False}
    again = make(secretaries={"*": ("alice", "bob", "sip:accueil@192.0.2.10")}, secretary_domain=EDGE,
                 login_required=True, state_file=state)
    c = again.desk
    assert (c.secretary("alice").logged_in, c.secretary("alice").paused) == (True, None)
    assert (c.secretary("bob").logged_in, c.secretary("bob").paused) == (True, "réunion")
    assert c.secretary("sip:accueil@192.0.2.10").paused == "poste en panne"


def test_an_unreadable_state_file_is_ignored_not_fatal(make, tmp_path):
    state = tmp_path / "secretaries.json"
    state.write_text("{not json")
    h = make(secretaries={"*": ("alice",)}, secretary_domain=EDGE, login_required=True, state_file=state)
    assert not h.desk.secretary("alice").logged_in


# --- strategies -----------------------------------------------------------------------------------

def answer_and_finish(h, leg):
    dial = h.media.last(p.Dial)
    h.answered(dial.leg)
    h.ended(leg)
    h.clock.advance(60)  # past the wrap-up
    return dial.uri


def test_fewest_calls_today_goes_to_who_answered_the_fewest(make):
    h = make(secretaries={"*": ("sip:a@192.0.2.1", "sip:b@192.0.2.2")}, dialplans=tuned(strategy="fewest_calls"))
    # a takes two calls while b is idle the longest... by longest idle b would be next: not here.
    first = queued_call(h)
    assert answer_and_finish(h, first) == "sip:a@192.0.2.1"
    second = queued_call(h)
    assert answer_and_finish(h, second) == "sip:b@192.0.2.2"
    third = queued_call(h)
    assert answer_and_finish(h, third) == "sip:a@192.0.2.1"
    h.desk.secretary("sip:a@192.0.2.1").idle_since = h.clock.seconds() - 3600  # a idle far longer
    fourth = queued_call(h)
    assert h.media.last(p.Dial).uri == "sip:b@192.0.2.2"  # 1 call today against a's 2
    assert answer_and_finish(h, fourth) == "sip:b@192.0.2.2"


def test_skill_sends_the_call_to_the_highest_level_for_the_practice(make):
    h = make(secretaries={"*": ("sip:a@192.0.2.1", "sip:b@192.0.2.2", "sip:c@192.0.2.3")},
             levels={"sip:c@192.0.2.3": {MARTIN: 3}, "sip:b@192.0.2.2": {"*": 2}},
             dialplans=tuned(strategy="skill"))
    queued_call(h)
    assert h.media.last(p.Dial).uri == "sip:c@192.0.2.3"
    queued_call(h)
    assert h.media.last(p.Dial).uri == "sip:b@192.0.2.2"  # c is ringing: the next level


def test_ring_all_rings_every_free_secretary_and_the_first_to_answer_takes_it(make):
    team = ("sip:a@192.0.2.1", "sip:b@192.0.2.2", "sip:c@192.0.2.3")
    h = make(secretaries={"*": team}, dialplans=tuned(strategy="ring_all"))
    leg = queued_call(h)
    dials = h.media.commands(p.Dial)
    assert sorted(d.uri for d in dials) == sorted(team)
    winner = next(d for d in dials if d.uri == "sip:b@192.0.2.2")
    h.answered(winner.leg)
    assert h.media.last(p.Bridge) == p.Bridge(leg, winner.leg)
    hung_up = {c.leg for c in h.media.commands(p.Hangup)}
    assert hung_up == {d.leg for d in dials if d is not winner}
    a, b, c = (h.desk.secretary(u) for u in team)
    assert (a.state, b.state, c.state) == ("available", "on_call", "available")
    assert a.missed == c.missed == 0  # someone else answered: not a missed offer


def test_ring_all_nobody_answering_puts_the_call_back_and_rings_again(make):
    team = ("sip:a@192.0.2.1", "sip:b@192.0.2.2")
    h = make(secretaries={"*": team}, dialplans=tuned(strategy="ring_all"))
    leg = queued_call(h)
    h.ended(h.media.commands(p.Dial)[0].leg, code=486)  # a declines: b still rings
    assert h.controller.sessions[leg].state.value == "ringing"
    h.clock.advance(20)  # b does not answer either
    assert len(h.media.commands(p.Dial)) == 4  # a new round rings both again
    assert h.desk.secretary(team[0]).missed == 1 and h.desk.secretary(team[1]).missed == 1


def test_caller_hanging_up_while_ring_all_stops_every_phone(make):
    team = ("sip:a@192.0.2.1", "sip:b@192.0.2.2")
    h = make(secretaries={"*": team}, dialplans=tuned(strategy="ring_all"))
    leg = queued_call(h)
    call_id = h.call_id(leg)
    h.ended(leg)
    assert {c.leg for c in h.media.commands(p.Hangup)} >= {d.leg for d in h.media.commands(p.Dial)}
    assert all(h.desk.secretary(u).state == "available" for u in team)
    assert h.record(call_id).outcome == "abandoned"


# --- shared lines ---------------------------------------------------------------------------------

def shared_plans():
    plans = {d.practice: d for d in tuned(MARTIN, shared="nord")}
    msp = plans[MSP]
    plans[MSP] = dataclasses.replace(msp, queues={**msp.queues, "general": dataclasses.replace(msp.queues["general"], shared="nord")})
    return list(plans.values())


def test_a_shared_line_serves_two_practices_in_arrival_order_with_one_team(make):
    h = make(secretaries={"line:nord": ("sip:pool@192.0.2.9",)}, dialplans=shared_plans())
    secretary = busy_secretary(h)  # a first Martin call keeps the pool busy
    martin = queued_call(h)
    h.clock.advance(5)
    msp = queued_call(h, number=MSP_NUMBER)
    h.clock.advance(5)
    martin_again = queued_call(h)
    c = h.controller
    assert [h.desk.queues.position(c.sessions[x]) for x in (martin, msp, martin_again)] == [1, 2, 3]
    h.ended(secretary)
    h.clock.advance(15)
    assert c.sessions[martin].state.value == "ringing"
    h.answered(h.media.last(p.Dial).leg)
    h.ended(martin)
    h.clock.advance(15)
    assert c.sessions[msp].state.value == "ringing"  # the other practice's call, in arrival order
    assert c.sessions[martin_again].state.value == "queued"


def test_the_team_by_state_and_the_waiting_calls_are_metrics_without_numbers(make):
    h = make(secretaries={"*": ("alice", "bob")}, secretary_domain=EDGE)
    h.desk.registrations_changed(frozenset({"alice", "bob"}))
    h.desk.pause("bob", "réunion")
    busy_secretary(h)
    queued_call(h, caller="+33655555555")
    m = h.controller.metrics
    assert [m.secretaries.labels(s)._value.get() for s in ("on_call", "paused", "available", "offline")] == [1, 1, 0, 0]
    assert m.queue_waiting.labels(MARTIN, "general")._value.get() == 1
    from prometheus_client import generate_latest
    assert b"+33" not in generate_latest(m.registry) and b"655555555" not in generate_latest(m.registry)


def test_an_offer_our_worker_cannot_place_is_not_her_miss_and_is_retried_shortly(make):
    h = make(secretaries={"*": ("sip:a@192.0.2.1",)}, max_missed_offers=1)
    leg = queued_call(h)
    first = h.media.last(p.Dial)
    h.legs.media_event("w0", p.LegEnded(first.leg, 486, "dial failed: too many calls", "worker"))
    secretary = h.desk.secretary("sip:a@192.0.2.1")
    assert secretary.missed == 0 and secretary.paused is None and secretary.state == "available"
    assert len(h.media.commands(p.Dial)) == 1  # no instant redial loop on a full worker
    h.clock.advance(2)
    assert len(h.media.commands(p.Dial)) == 2 and h.controller.sessions[leg].state.value == "ringing"
    h.ended(h.media.last(p.Dial).leg, code=486)  # her phone busy: that one is hers
    assert secretary.paused == "1 appel manqué"


def test_a_pause_she_chose_survives_her_softphone_re_registering(make):
    h = make(secretaries={"*": ("alice",)}, secretary_domain=EDGE, max_missed_offers=1)
    c = h.desk
    c.registrations_changed(frozenset({"alice"}))
    c.pause("alice", "pause déjeuner")
    c.registrations_changed(frozenset())  # a network blip...
    c.registrations_changed(frozenset({"alice"}))  # ...and she is registered again
    assert c.secretary("alice").paused == "pause déjeuner"
    c.resume("alice")
    queued_call(h)
    h.clock.advance(20)  # one missed offer pauses her (max 1) ...
    assert c.secretary("alice").paused == "1 appel manqué"
    c.registrations_changed(frozenset())
    c.registrations_changed(frozenset({"alice"}))  # ... and that pause does end on re-registering
    assert c.secretary("alice").paused is None
