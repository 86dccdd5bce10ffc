"""A call handed from the secretary who answered it to a colleague (controller/transfer.py).

The media plane is faked (the commands a worker would get), the call record is real (SQLite through
the recorder), the events are those published.
"""

from __future__ import annotations

import pytest

from callrouter.domain.transfer import NotYourCall, TransferRefused
from callrouter.domain.errors import UnknownCall
from callrouter.domain.kpis import CallFact, classify
from callrouter.media import protocol as p
from tests.controller.test_calls import queued_call

SEC1, SEC2, SEC3 = "sip:sec1@127.0.0.1:5090", "sip:sec2@127.0.0.1:5091", "sip:sec3@127.0.0.1:5092"
TEAM = {"cabinet-dr-martin/general": (SEC1, SEC2), "*": (SEC3,)}


def answered_by_first(h):
    """A call answered by SEC1 (SEC2 and SEC3 idle); returns (caller leg, SEC1's leg, call id)."""
    leg = queued_call(h)
    h.clock.advance(h.controller.ctx.settings.pop_lead_s)
    dial = h.media.last(p.Dial)
    assert dial.uri == SEC1
    h.answered(dial.leg)
    return leg, dial.leg, h.call_id(leg)


def call_states(h, call_id):
    return [m.payload for m in h.published.on(f"/calls/{call_id}/state")]


def test_the_colleague_answers_the_patient_is_bridged_to_her_and_the_first_leg_hung_up(make):
    h = make(secretaries=TEAM)
    leg, first_leg, call_id = answered_by_first(h)
    transfers = h.controller.transfers
    assert [v["id"] for v in transfers.colleagues(call_id, SEC1)] == [SEC2]  # SEC3 covers another queue
    view = transfers.transfer(call_id, SEC2, by="sec1", requester=SEC1)
    assert view == {"call_id": call_id, "state": "transferring", "from": SEC1, "to": SEC2}
    assert h.media.last(p.Unbridge) == p.Unbridge(leg, first_leg)
    hold = h.media.last(p.Play, leg)
    assert hold.loop and hold.path.endswith("music_on_hold.wav")  # the patient hears the queue's music
    assert h.media.last(p.Play, first_leg).loop  # her first secretary, on hold, too
    dial = h.media.last(p.Dial)
    assert dial.uri == SEC2 and dial.headers["X-Callrouter-Call-Id"] == call_id
    assert dial.headers["X-Callrouter-Transfer-From"] == SEC1
    assert h.desk.view(SEC2)["state"] == "ringing" and h.desk.current_offer(SEC2)["call_id"] == call_id
    h.clock.advance(3)
    h.answered(dial.leg)
    assert h.media.last(p.Bridge) == p.Bridge(leg, dial.leg)
    assert h.media.last(p.Hangup).leg == first_leg
    assert h.desk.view(SEC2)["state"] == "on_call"
    assert h.desk.view(SEC1)["state"] in ("wrap_up", "available")  # her normal after-call state
    assert h.desk.view(SEC2)["calls_today"] == 0 and h.desk.view(SEC1)["calls_today"] == 1  # answered once
    states = [(m["state"], m.get("secretary"), m.get("to")) for m in call_states(h, call_id)]
    assert ("transferring", "sec1", "sec2") in states and states[-1] == ("transferred", "sec1", "sec2")
    h.clock.advance(30)
    h.ended(leg)  # the patient hangs up: the colleague's leg with her
    assert h.media.last(p.Hangup).leg == dial.leg
    rec = h.record(call_id)
    assert rec.outcome == "answered" and rec.secretary == SEC1  # who answered it
    by_kind = {leg.kind: leg for leg in rec.legs}
    assert by_kind["secretary"].end_cause == "transferred" and by_kind["transfer"].party == SEC2  # who took it over
    assert all(x.ended_at is not None for x in rec.legs)
    assert h.desk.view(SEC2)["state"] in ("wrap_up", "available")


def test_the_call_is_counted_answered_once_in_the_kpis(make):
    h = make(secretaries=TEAM)
    leg, _, call_id = answered_by_first(h)
    h.controller.transfers.transfer(call_id, SEC2, by="sec1")
    h.answered(h.media.last(p.Dial).leg)
    h.ended(leg)
    rec = h.record(call_id)
    answered = [m for m in h.published.sent if (m.payload or {}).get("state") == "answered"
                and (m.payload or {}).get("call_id") == call_id]
    assert len(answered) == 1
    facts = CallFact(rec.id, rec.practice, rec.arrived_at, queued_at=rec.queued_at, answered_at=rec.answered_at,
                      ended_at=rec.ended_at, outcome=rec.outcome)
    assert classify(facts) == "answered"


def test_no_answer_in_time_bridges_the_patient_back_and_tells_the_first_secretary(make):
    h = make(secretaries=TEAM)
    leg, first_leg, call_id = answered_by_first(h)
    h.controller.transfers.transfer(call_id, SEC2, by="sec1", requester=SEC1)
    dial = h.media.last(p.Dial)
    h.clock.advance(20)  # ring_timeout_s
    assert h.media.last(p.Hangup).leg == dial.leg
    assert h.media.last(p.Bridge) == p.Bridge(leg, first_leg)
    last = call_states(h, call_id)[-1]
    assert (last["state"], last["secretary"], last["to"], last["cause"]) == ("transfer_failed", "sec1", "sec2", "ring_timeout")
    assert h.desk.view(SEC1)["state"] == "on_call"
    sec2 = h.desk.view(SEC2)
    assert sec2["state"] == "available" and sec2["missed_in_a_row"] == 0  # a transfer is not a missed offer
    assert not h.controller.transfers.transferring(call_id)
    h.ended(first_leg)  # the call goes on with her, then ends as usual
    rec = h.record(call_id)
    assert rec.outcome == "answered" and rec.secretary == SEC1
    assert {x.kind: x.end_cause for x in rec.legs}["transfer"] == "ring_timeout"


def test_a_refusal_bridges_back_at_once_and_a_second_transfer_may_follow(make):
    h = make(secretaries={"*": (SEC1, SEC2, SEC3)})
    leg, first_leg, call_id = answered_by_first(h)
    h.controller.transfers.transfer(call_id, SEC2, by="sec1")
    h.legs.media_event("w0", p.LegEnded(h.media.last(p.Dial).leg, 603, "Decline", "remote"))
    assert h.media.last(p.Bridge) == p.Bridge(leg, first_leg)
    assert call_states(h, call_id)[-1]["cause"] == "603 Decline"
    h.controller.transfers.transfer(call_id, SEC3, by="sec1")
    second = h.media.last(p.Dial)
    assert second.uri == SEC3
    h.answered(second.leg)
    assert h.media.last(p.Bridge) == p.Bridge(leg, second.leg)


@pytest.mark.parametrize("to, code, status", [
    (SEC3, "not_covering", 422),  # covers another queue
    (SEC1, "self", 422),
    ("sip:nobody@127.0.0.1", "unknown_colleague", 422),
])
def test_a_transfer_to_someone_who_cannot_take_it_is_refused(make, to, code, status):
    h = make(secretaries=TEAM)
    leg, first_leg, call_id = answered_by_first(h)
    sent = len(h.media.sent)
    with pytest.raises(TransferRefused) as refused:
        h.controller.transfers.transfer(call_id, to, by="sec1")
    assert (refused.value.refusal.code, refused.value.refusal.status) == (code, status)
    assert str(refused.value)  # French, for the console
    assert len(h.media.sent) == sent  # nothing changed


def test_a_busy_colleague_or_a_call_not_in_progress_is_refused_409(make):
    h = make(secretaries={"*": (SEC1, SEC2)})
    leg, first_leg, call_id = answered_by_first(h)
    second = queued_call(h)  # rings SEC2
    assert h.desk.view(SEC2)["state"] == "ringing"
    with pytest.raises(TransferRefused) as refused:
        h.controller.transfers.transfer(call_id, SEC2, by="sec1")
    assert refused.value.refusal.status == 409 and "n'est pas disponible" in str(refused.value)
    with pytest.raises(TransferRefused) as refused:  # the second call is ringing, nobody on it
        h.controller.transfers.transfer(h.call_id(second), SEC1, by="sup")
    assert refused.value.refusal.code == "not_in_progress"
    with pytest.raises(UnknownCall):
        h.controller.transfers.transfer("no-such-call", SEC2, by="sup")
    with pytest.raises(NotYourCall):
        h.controller.transfers.transfer(call_id, SEC2, by="sec2", requester=SEC2)


def test_a_second_transfer_while_one_rings_is_refused(make):
    h = make(secretaries={"*": (SEC1, SEC2, SEC3)})
    _, _, call_id = answered_by_first(h)
    h.controller.transfers.transfer(call_id, SEC2, by="sec1")
    with pytest.raises(TransferRefused) as refused:
        h.controller.transfers.transfer(call_id, SEC3, by="sec1")
    assert refused.value.refusal.code == "already_transferring"


def test_the_patient_hanging_up_during_a_transfer_stops_the_colleagues_phone(make):
    h = make(secretaries=TEAM)
    leg, first_leg, call_id = answered_by_first(h)
    h.controller.transfers.transfer(call_id, SEC2, by="sec1")
    dial = h.media.last(p.Dial)
    h.ended(leg)
    hung = {c.leg for c in h.media.commands(p.Hangup)}
    assert {dial.leg, first_leg} <= hung
    assert h.desk.view(SEC2)["state"] == "available"
    rec = h.record(call_id)
    assert rec.outcome == "answered" and all(x.ended_at is not None for x in rec.legs)


def test_the_first_secretary_leaving_during_a_transfer_leaves_it_to_the_colleague(make):
    h = make(secretaries=TEAM)
    leg, first_leg, call_id = answered_by_first(h)
    h.controller.transfers.transfer(call_id, SEC2, by="sec1")
    dial = h.media.last(p.Dial)
    h.ended(first_leg)  # she hangs up while the patient is on hold: the call goes on
    assert not h.media.commands(p.Hangup, leg)
    h.answered(dial.leg)
    assert h.media.last(p.Bridge) == p.Bridge(leg, dial.leg)
    h.ended(dial.leg)
    assert h.media.last(p.Hangup).leg == leg
    assert h.record(call_id).outcome == "answered"


def test_the_first_secretary_gone_and_the_colleague_refusing_ends_the_call(make):
    h = make(secretaries=TEAM)
    leg, first_leg, call_id = answered_by_first(h)
    h.controller.transfers.transfer(call_id, SEC2, by="sec1")
    h.ended(first_leg)
    h.clock.advance(20)
    assert h.media.last(p.Hangup).leg == leg
    assert h.record(call_id).outcome == "answered"


def test_the_colleagues_screen_pop_goes_out_before_her_phone_rings(make):
    h = make(secretaries=TEAM, pop_lead_s=1.5)
    leg, _, call_id = answered_by_first(h)
    h.controller.transfers.transfer(call_id, SEC2, by="sec1")
    dials = len(h.media.commands(p.Dial))
    pops = [m for m in h.published.on("/screen-pop") if m.payload["call_id"] == call_id]
    assert pops[-1].payload["secretary"] == "sec2" and pops[-1].payload["practice"] == "cabinet-dr-martin"
    h.clock.advance(1.5)
    assert len(h.media.commands(p.Dial)) == dials + 1 and h.media.last(p.Dial).uri == SEC2
