"""A call's life in the controller: IVR, queue, secretary, overflow, voicemail, hang-ups, lost worker.

Media is the only part faked here (the commands a worker would get); the call records go through the
real recorder into a real SQLite store. The same flows run against real workers and SIPp in
tests/media.
"""

from __future__ import annotations

from callrouter.media import protocol as p


SEC1, SEC2 = "sip:sec1@127.0.0.1:5090", "sip:sec2@127.0.0.1:5091"


def to_menu(h, leg):
    """Welcome, then the triage menu prompt, played to the end."""
    h.finish_playing(leg)  # welcome
    h.finish_playing(leg)  # triage_menu


def queued_call(h, digit="3", **kw):
    """A call that chose `digit` in the triage menu (3: appointment, general queue)."""
    leg = h.incoming(**kw)
    to_menu(h, leg)
    h.digit(leg, digit)
    return leg


def busy_secretary(h):
    """A first call answered by the only secretary; returns the secretary's leg."""
    queued_call(h)
    dial = h.media.last(p.Dial)
    h.answered(dial.leg)
    return dial.leg


def test_call_answered_menu_choice_queued_and_bridged_to_a_secretary(harness):
    h = harness
    leg = h.incoming()
    call_id = h.call_id(leg)
    assert isinstance(h.media.sent[0][1], p.Answer)
    to_menu(h, leg)
    assert h.media.prompts(leg) == ["welcome", "triage_menu"]
    h.clock.advance(2)
    h.digit(leg, "3")
    hold, ringback = h.media.commands(p.Play, leg)[-2:]
    assert hold.loop and hold.path.endswith("music_on_hold.wav")
    dial = h.media.last(p.Dial)
    assert dial.uri == SEC1 and ringback.path.endswith("ringback.wav")
    assert dial.display_name == "Cabinet du Dr Claire Martin - rendez-vous"
    assert dial.headers["X-Callrouter-Call-Id"] == call_id and dial.headers["X-Callrouter-Practice"] == "cabinet-dr-martin"
    assert "practices/cabinet-dr-martin" in dial.headers["Call-Info"]
    h.clock.advance(4)
    h.answered(dial.leg)
    assert h.media.last(p.Bridge) == p.Bridge(leg, dial.leg)
    h.clock.advance(60)
    h.ended(dial.leg)  # the secretary hangs up: the caller is hung up too
    assert h.media.last(p.Hangup).leg == leg
    rec = h.record(call_id)
    assert rec.outcome == "answered" and rec.secretary == SEC1
    assert rec.route == "open" and rec.reason == "rendez-vous" and rec.queue == "general"
    assert [(a.menu, a.digit) for a in rec.ivr_answers] == [("triage", "3")]
    assert rec.queue_wait_seconds == 4
    assert {leg.kind for leg in rec.legs} == {"caller", "secretary"}


def test_caller_hangup_while_bridged_hangs_up_the_secretary(harness):
    h = harness
    leg = h.incoming()
    to_menu(h, leg)
    h.digit(leg, "3")
    dial = h.media.last(p.Dial)
    h.answered(dial.leg)
    call_id = h.call_id(leg)
    h.ended(leg)
    assert h.media.last(p.Hangup).leg == dial.leg
    rec = h.record(call_id)
    assert rec.outcome == "answered"
    assert all(leg.ended_at is not None for leg in rec.legs)


def test_menu_timeouts_replay_then_fall_to_on_timeout(harness):
    h = harness
    leg = h.incoming()
    to_menu(h, leg)
    for _ in range(2):
        h.clock.advance(6)
        assert h.media.prompts(leg)[-1] == "no_choice"
        h.finish_playing(leg, 2)
    h.clock.advance(6)  # third silence: on_timeout of the menu is the general queue
    assert h.media.last(p.Dial).uri == SEC1
    assert h.controller.metrics.ivr_timeouts.labels("cabinet-dr-martin")._value.get() == 1


def test_invalid_digit_says_so_and_a_digit_during_the_prompt_interrupts_it(harness):
    h = harness
    leg = h.incoming()
    to_menu(h, leg)
    h.digit(leg, "9")
    assert h.media.prompts(leg)[-1] == "invalid_choice"
    h.digit(leg, "4")  # barge-in while "invalid_choice" plays
    assert isinstance(h.media.commands(leg=leg)[-3], p.StopPlayback) or h.media.commands(p.StopPlayback, leg)
    assert h.media.last(p.Dial).uri == SEC1


def test_vital_choice_announces_15_and_starts_the_vital_tier(harness):
    h = harness
    leg = h.incoming()
    to_menu(h, leg)
    h.digit(leg, "1")
    assert h.media.prompts(leg)[-1] == "call_15"
    call_id = h.call_id(leg)
    assert h.escalations == [(call_id, "vital")]
    h.finish_playing(leg)
    assert h.media.last(p.Hangup).leg == leg
    h.ended(leg)
    rec = h.record(call_id)
    assert rec.outcome == "announced" and "tier vital" in rec.reason


def test_ring_timeout_moves_to_the_next_secretary(make):
    h = make(secretaries={"cabinet-dr-martin/general": (SEC1, SEC2)})
    leg = h.incoming()
    to_menu(h, leg)
    h.digit(leg, "3")
    first = h.media.last(p.Dial)
    assert first.uri == SEC1
    h.clock.advance(20)
    assert h.media.last(p.Hangup).leg == first.leg
    second = h.media.last(p.Dial)
    assert second.uri == SEC2
    h.answered(second.leg)
    assert h.media.last(p.Bridge) == p.Bridge(leg, second.leg)


def test_busy_secretary_is_skipped(make):
    h = make(secretaries={"*": (SEC1, SEC2)})
    leg = h.incoming()
    to_menu(h, leg)
    h.digit(leg, "3")
    first = h.media.last(p.Dial)
    h.ended(first.leg, code=486)
    assert h.media.last(p.Dial).uri == SEC2


def test_nobody_to_answer_overflows_to_callback_offer_and_1_requests_a_callback(make):
    h = make(secretaries={})
    leg = h.incoming()
    call_id = h.call_id(leg)
    to_menu(h, leg)
    h.digit(leg, "3")
    assert h.media.prompts(leg)[-1] == "callback_offer"
    h.finish_playing(leg)
    h.digit(leg, "1")  # her number is read back...
    assert h.media.prompts(leg)[-1] == "callback_number_is"
    h.digit(leg, "1")  # ...and confirmed
    assert h.media.prompts(leg)[-1] == "callback_confirm"
    h.finish_playing(leg)
    h.ended(leg)
    rec = h.record(call_id)
    assert rec.outcome == "callback_requested" and rec.route == "overflow"
    assert rec.reason == "rendez-vous; overflow on nobody"  # the record says why it overflowed
    assert h.controller.metrics.overflows.labels("cabinet-dr-martin", "nobody")._value.get() == 1


def test_waiting_too_long_overflows(make):
    h = make(secretaries={"*": (SEC1,)})
    busy_secretary(h)
    second = queued_call(h)
    assert h.media.last(p.Play, second).loop  # on hold
    h.clock.advance(89)
    assert h.controller.sessions[second].state.value == "queued" and "callback_offer" not in h.media.prompts(second)
    h.clock.advance(1)  # wait_max 90s
    assert h.media.prompts(second)[-1] == "callback_offer"


def test_position_is_announced_while_waiting(make):
    """After the queue's announce interval (45 s) the caller hears her place and the estimated
    wait, then the music on hold again."""
    h = make(secretaries={"*": (SEC1,)})
    busy_secretary(h)
    second = queued_call(h)
    h.clock.advance(45)
    assert h.media.prompts(second)[-1] == "queue_position_1"
    h.finish_playing(second)
    assert h.media.prompts(second)[-1] == "wait_5"  # 1 call ahead of her x 180 s, one secretary
    h.finish_playing(second)
    assert h.media.last(p.Play, second).loop and h.media.prompts(second)[-1] == "music_on_hold"


def test_caller_hanging_up_in_queue_is_abandoned_and_leaves_the_queue(make):
    h = make(secretaries={"*": (SEC1,)})
    busy_secretary(h)
    second = queued_call(h)
    call_id = h.call_id(second)
    h.ended(second)
    assert h.desk.queues.waiting() == []
    assert h.record(call_id).outcome == "abandoned"


def test_secretary_freed_after_wrap_up_takes_the_next_call(make):
    h = make(secretaries={"*": (SEC1,)})
    first_secretary_leg = busy_secretary(h)
    d1 = h.media.last(p.Dial)
    queued_call(h)
    h.ended(first_secretary_leg)  # first call over; wrap-up of the general queue is 15 s
    assert h.media.last(p.Dial) == d1
    h.clock.advance(15)
    assert h.media.last(p.Dial).leg != d1.leg


def test_urgent_calls_jump_ahead_of_appointments(make):
    h = make(secretaries={"*": (SEC1,)})
    secretary_leg = busy_secretary(h)
    appointment = queued_call(h)
    h.clock.advance(5)
    urgent = queued_call(h, digit="2")  # priority queue
    h.ended(secretary_leg)
    h.clock.advance(15)
    assert h.controller.sessions[urgent].state.value == "ringing"
    assert h.controller.sessions[appointment].state.value == "queued"


def test_voicemail_records_and_stores_the_message(harness, tmp_path):
    h = harness
    h.clock.advance(12 * 3600)  # 21:00 Paris: closed
    leg = h.incoming()
    call_id = h.call_id(leg)
    h.finish_playing(leg)  # triage_closed_menu
    h.digit(leg, "3")
    assert h.media.prompts(leg)[-1] == "voicemail_prompt" and not h.media.commands(p.Record)
    h.finish_playing(leg)
    assert h.media.prompts(leg)[-1] == "beep" and not h.media.commands(p.Record)  # recording starts after the beep
    h.finish_playing(leg)
    rec_cmd = h.media.last(p.Record)
    assert rec_cmd.stop_digits == "#" and rec_cmd.path.endswith(f"{call_id}.wav")
    h.legs.media_event("w0", p.RecordingFinished(leg, rec_cmd.path, 7.5, "digit"))
    h.finish_playing(leg)  # goodbye
    h.ended(leg)
    rec = h.record(call_id)
    assert rec.outcome == "voicemail"
    assert recordings(h, call_id) == [(rec_cmd.path, 7.5)]


def recordings(h, call_id):
    from sqlalchemy import select
    from callrouter.store.models import Recording
    with h.calls._db.transaction() as s:
        return [(r.location, r.duration_seconds) for r in s.scalars(select(Recording).where(Recording.call_id == call_id))]


def test_caller_hanging_up_during_voicemail_keeps_the_message(harness):
    h = harness
    h.clock.advance(12 * 3600)
    leg = h.incoming()
    call_id = h.call_id(leg)
    h.finish_playing(leg)
    h.digit(leg, "3")
    h.finish_playing(leg, 2)
    path = h.media.last(p.Record).path
    h.ended(leg)
    h.legs.media_event("w0", p.RecordingFinished(leg, path, 12.0, "leg_ended"))
    assert leg not in h.controller.sessions
    assert h.record(call_id).outcome == "voicemail"
    assert recordings(h, call_id) == [(path, 12.0)]


def test_legs_lost_with_their_worker_close_their_calls_only(make):
    """The pool reports each leg of a dead worker as lost (no leg_ended will come)."""
    h = make(secretaries={"*": (SEC1, SEC2)})
    a = queued_call(h, worker="w0")
    secretary_leg = h.media.last(p.Dial).leg
    b = h.incoming(worker="w1")
    id_a, id_b = h.call_id(a), h.call_id(b)
    h.legs.leg_lost("w0", a, "worker_lost")
    h.legs.leg_lost("w0", secretary_leg, "worker_lost")
    assert a not in h.controller.sessions and b in h.controller.sessions
    assert not any(secretary.busy for secretary in h.desk.queues.secretaries())  # the secretary is free again
    rec = h.record(id_a)
    assert (rec.outcome, rec.cause) == ("failed", "worker_lost")
    assert h.record(id_b).ended_at is None


def test_an_unknown_number_is_refused_404_unanswered_and_recorded_as_rejected(harness):
    h = harness
    leg = h.incoming(number="+33999999999")
    call_id = h.controller.sessions[leg].call_id
    assert h.media.commands(leg=leg) == [p.Hangup(leg, 404)]  # no Answer, no prompt: nothing billed
    h.legs.media_event("w0", p.LegEnded(leg, 404, "Not Found", "local"))
    assert leg not in h.controller.sessions
    rec = h.record(call_id)
    assert (rec.practice, rec.outcome, rec.cause, rec.route) == ("", "rejected", "unknown_number", "none")
    assert "refused unanswered (404)" in rec.reason and rec.ivr_answered_at is None
    assert any("refused unanswered (404)" in line for line in rec.why.split("\n"))
    assert h.controller.metrics.calls.labels("unknown", "rejected")._value.get() == 1


def test_caller_number_never_in_metric_labels(harness):
    h = harness
    leg = h.incoming(caller="+33612345678")
    to_menu(h, leg)
    h.ended(leg)
    from prometheus_client import generate_latest
    text = generate_latest(h.controller.metrics.registry).decode()
    assert "33612345678" not in text and 'practice="cabinet-dr-martin"' in text


def test_a_digit_during_the_welcome_answers_the_menu_that_follows(harness):
    h = harness
    leg = h.incoming()
    assert h.media.prompts(leg) == ["welcome"]
    h.digit(leg, "3")
    assert h.media.commands(p.StopPlayback, leg)
    assert h.media.last(p.Dial).uri == SEC1


def test_a_digit_during_a_closing_message_is_ignored(harness):
    h = harness
    leg = h.incoming()
    to_menu(h, leg)
    h.digit(leg, "1")  # vital: call_15 then hang up
    h.digit(leg, "3")
    assert h.media.prompts(leg)[-1] == "call_15" and not h.media.commands(p.Dial)


def test_a_prompt_that_cannot_be_played_does_not_leave_the_caller_stuck(harness):
    h = harness
    leg = h.incoming()
    h.legs.media_event("w0", p.Error("no prompt file /x/welcome.wav", "play", leg))
    assert h.media.prompts(leg) == ["welcome", "triage_menu"]


def test_position_and_estimated_wait_are_announced(make, tmp_path):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for name in ("queue_position", "queue_position_1", "queue_position_2", "wait_1", "wait_2", "wait_5", "wait_10"):
        (prompts / f"{name}.wav").write_bytes(b"RIFF")
    h = make(secretaries={"*": (SEC1,)}, prompt_dir=str(prompts))
    secretary_leg = busy_secretary(h)
    h.clock.advance(120)
    h.ended(secretary_leg)  # one handled call: 120 s talk + 15 s wrap-up feeds the average
    h.clock.advance(15)
    busy_secretary(h)
    first, second = queued_call(h), queued_call(h)
    h.clock.advance(45)
    h.finish_playing(first)
    h.finish_playing(second)
    assert h.media.prompts(first)[-2:] == ["queue_position_1", "wait_5"]  # 1 x (180 + 0.2 x (135 - 180)) s
    assert h.media.prompts(second)[-2:] == ["queue_position_2", "wait_10"]  # 2 x 171 s
    waiting = h.controller.sessions[second].waiting
    assert h.controller.offers.estimated_wait(waiting, 2) == 2 * 171.0


def test_wait_prompt_buckets():
    from callrouter.controller.offers import wait_prompt
    assert [wait_prompt(s) for s in (30, 61, 119, 300, 599, 601)] == ["wait_1", "wait_2", "wait_2", "wait_5", "wait_10", "wait_long"]


def test_a_secretary_is_offered_calls_only_while_her_softphone_is_registered(make):
    h = make(secretaries={"*": ("alice",)}, secretary_domain="127.0.0.1:5060")
    leg = queued_call(h)
    assert h.media.prompts(leg)[-1] == "callback_offer"  # nobody registered: overflow at once
    h.desk.registrations_changed(frozenset({"alice"}))
    waiting = queued_call(h)
    dial = h.media.last(p.Dial)
    assert dial.uri == "sip:alice@127.0.0.1:5060" and h.controller.sessions[waiting].state.value == "ringing"


def test_a_waiting_call_goes_to_a_secretary_as_soon_as_she_registers(make):
    h = make(secretaries={"*": ("alice", "bob")}, secretary_domain="127.0.0.1:5060")
    h.desk.registrations_changed(frozenset({"alice"}))
    busy_secretary(h)  # alice takes the first call
    second = queued_call(h)
    assert h.controller.sessions[second].state.value == "queued"
    h.desk.registrations_changed(frozenset({"alice", "bob"}))
    assert h.media.last(p.Dial).uri == "sip:bob@127.0.0.1:5060"
    h.desk.registrations_changed(frozenset({"alice"}))  # bob's phone goes away
    assert not h.desk.queues.covering("cabinet-dr-martin", "general")[1].reachable


def test_a_username_without_an_edge_is_a_configuration_error(tmp_path):
    import pytest
    from callrouter.controller.queues import QueueBook
    with pytest.raises(ValueError, match="no SIP edge"):
        QueueBook({"*": ("alice",)})


def test_the_screen_pop_with_the_practice_card_is_published_before_the_secretary_rings(harness):
    h = harness
    leg = queued_call(h, caller="+33612345678")
    call_id = h.call_id(leg)
    dial_index = next(i for i, (_, c) in enumerate(h.media.sent) if isinstance(c, p.Dial))
    published_before_ringing = h.published.sent[:h.media.events_before[dial_index]]
    [pop] = [m for m in published_before_ringing if m.topic.endswith("/secretaries/sec1/screen-pop")]
    assert pop.qos == 1 and not pop.retain
    body = pop.payload
    assert body["call_id"] == call_id and body["caller"]["number"] == "+33612345678"
    assert body["caller"]["calls_today"] == 1 and body["reason"] == "rendez-vous"
    assert body["practice"] == "cabinet-dr-martin" and body["card"]["platform"] == "doctolib"
    assert {t["id"] for t in body["card"]["consultation_types"]} >= {"consultation", "nouveau-patient"}
    h.answered(h.media.last(p.Dial).leg)
    h.ended(leg)
    assert h.published.states(call_id) == ["arrived", "ivr", "queued", "offered", "answered", "ended"]
    states = [m.payload["state"] for m in h.published.on("/secretaries/sec1/state")]
    assert states[:2] == ["ringing", "on_call"] and states[-1] == "wrap_up"
    assert all("33612345678" not in m.topic for m in h.published.sent)


def test_a_caller_who_calls_again_today_is_counted_on_the_screen_pop(harness):
    h = harness
    first = h.incoming(caller="+33655555555")
    h.ended(first)
    queued_call(h, caller="+33655555555")
    [pop] = h.published.on("/screen-pop")
    assert pop.payload["caller"]["calls_today"] == 2


def test_a_secretary_who_misses_three_offers_in_a_row_is_paused_until_her_softphone_comes_back(make):
    h = make(secretaries={"*": ("alice",)}, secretary_domain="edge:5060")
    h.desk.registrations_changed(frozenset({"alice"}))
    alice = h.desk.queues.secretaries()[0]
    queued_call(h)
    for _ in range(3):  # she never picks up
        h.clock.advance(20)
    assert alice.paused == "3 appels manqués d'affilée" and not alice.reachable
    paused = [m.payload for m in h.published.on("/secretaries/alice/state") if m.payload["state"] == "paused"]
    assert paused and paused[-1]["reason"] == "3 appels manqués d'affilée"
    dials = len(h.media.commands(p.Dial))
    h.clock.advance(20)  # the call keeps waiting: she is not rung again
    assert len(h.media.commands(p.Dial)) == dials
    h.desk.registrations_changed(frozenset())  # her softphone goes off...
    h.desk.registrations_changed(frozenset({"alice"}))  # ...and on again
    assert alice.reachable and len(h.media.commands(p.Dial)) == dials + 1


def test_an_answered_offer_resets_the_missed_count(make):
    h = make(secretaries={"*": ("alice",)}, secretary_domain="edge:5060")
    h.desk.registrations_changed(frozenset({"alice"}))
    alice = h.desk.queues.secretaries()[0]
    queued_call(h)
    h.clock.advance(20)
    h.clock.advance(20)
    assert alice.missed == 2
    h.answered(h.media.last(p.Dial).leg)
    assert alice.missed == 0 and alice.paused is None


def test_a_caller_who_heard_the_open_menu_is_served_as_open_after_closing_time(harness):
    """Arrived at 18:59:50 (open until 19:00), pressed 3 at 19:00:10: queued for a secretary (the
    open menu's 3), not sent to the closed menu's voicemail."""
    h = harness
    h.clock.advance(9 * 3600 - 10)  # 18:59:50 Paris
    leg = h.incoming()
    call_id = h.call_id(leg)
    to_menu(h, leg)
    h.clock.advance(20)  # 19:00:10: closed now
    h.digit(leg, "3")
    assert h.media.last(p.Dial).uri == SEC1 and not h.media.commands(p.Record)
    h.answered(h.media.last(p.Dial).leg)
    h.ended(leg)
    rec = h.record(call_id)
    assert (rec.route, rec.reason, rec.outcome) == ("open", "rendez-vous", "answered")


def test_an_urgent_choice_after_closing_time_is_queued_as_the_open_menu_said(harness):
    h = harness
    h.clock.advance(9 * 3600 - 10)
    leg = h.incoming()
    to_menu(h, leg)
    h.clock.advance(20)
    h.digit(leg, "2")
    assert h.escalations == [(h.call_id(leg), "urgent")]
    assert h.controller.sessions[leg].state.value == "ringing"  # the priority queue, not a message and hang-up


def test_the_estimated_wait_counts_only_the_secretaries_taking_calls(make):
    """Three secretaries configured, but bob and carol are not registered: the one at work shares the
    queue alone (1 x 180 s: "moins de cinq minutes", not 180 / 3 s)."""
    h = make(secretaries={"*": (SEC1, "bob", "carol")}, secretary_domain="edge:5060")
    busy_secretary(h)
    second = queued_call(h)
    assert h.controller.offers.estimated_wait(h.controller.sessions[second].waiting, 1) == 180.0
    h.clock.advance(45)
    h.finish_playing(second)
    assert h.media.prompts(second)[-2:] == ["queue_position_1", "wait_5"]


def test_a_place_beyond_the_fifth_is_announced_as_more_than_five(make):
    h = make(secretaries={"*": (SEC1,)})
    busy_secretary(h)
    legs = [queued_call(h) for _ in range(6)]
    h.clock.advance(45)
    assert h.media.prompts(legs[4])[-1] == "queue_position_5"
    assert h.media.prompts(legs[5])[-1] == "queue_position_more_5"


def test_every_position_and_wait_prompt_has_a_french_text():
    from callrouter.controller.offers import position_prompt, wait_prompt
    from callrouter.prompts import Catalogue
    names = {position_prompt(n) for n in range(0, 12)} | {wait_prompt(s) for s in range(0, 2000, 30)}
    assert names <= set(Catalogue.load().texts)
