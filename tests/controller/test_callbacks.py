"""Callback tasks: the caller confirms a number, the task keeps her place in line, a secretary is rung
then the patient, and the task is done when the patient answers. Records and tasks go to a real
SQLite store through the real recorder; media is faked."""

from __future__ import annotations

import datetime as dt

from callrouter.media import protocol as p
from callrouter.store.tasks import TaskQuery
from tests.controller.test_calls import SEC1, SEC2, busy_secretary, queued_call

PATIENT = "+33612345678"


def overflowing_call(h, caller=PATIENT):
    """A call that overflows at once (nobody to answer) and is offered a callback."""
    leg = queued_call(h, caller=caller)
    assert h.media.prompts(leg)[-1] == "callback_offer"
    h.finish_playing(leg)
    return leg


def tasks(h, **kw):
    assert h.recorder.flush(10)
    return h.tasks.list(TaskQuery(**kw))


def digits(h, leg, keys):
    for k in keys:
        h.digit(leg, k)


def test_the_caller_confirms_her_own_number_and_a_task_is_created(make):
    h = make(secretaries={})
    leg = overflowing_call(h)
    call_id = h.call_id(leg)
    h.digit(leg, "1")
    h.finish_playing(leg, times=11)
    assert h.media.prompts(leg)[-12:] == ["callback_number_is", *[f"digit_{d}" for d in "0612345678"],
                                          "callback_confirm_or_change"]
    h.digit(leg, "1")
    assert h.media.prompts(leg)[-1] == "callback_confirm"
    h.finish_playing(leg)
    [task] = tasks(h)
    assert (task.number, task.source, task.call_id, task.state, task.queue) == (PATIENT, "overflow", call_id, "open",
                                                                                  "general")
    assert task.expires_at - task.created_at == dt.timedelta(hours=4)
    assert h.record(call_id).outcome == "callback_requested"


def test_a_hidden_number_is_typed_checked_read_back_and_can_be_changed(make):
    h = make(secretaries={})
    leg = overflowing_call(h, caller="anonymous")
    h.digit(leg, "1")
    assert h.media.prompts(leg)[-1] == "callback_enter_number"
    digits(h, leg, "15#")  # a short number cannot be called back
    h.finish_playing(leg)
    assert h.media.prompts(leg)[-2:] == ["callback_invalid_number", "callback_enter_number"]
    digits(h, leg, "0262123456")  # ten digits end the entry without #
    h.finish_playing(leg, times=10)
    assert h.media.prompts(leg)[-11:] == ["callback_number_is", *[f"digit_{d}" for d in "0262123456"]]
    h.digit(leg, "2")  # not that one after all
    assert h.media.prompts(leg)[-1] == "callback_enter_number"
    digits(h, leg, "0698765432#")
    h.digit(leg, "1")
    [task] = tasks(h)
    assert task.number == "+33698765432"


def test_a_caller_who_never_confirms_creates_no_task(make):
    h = make(secretaries={})
    leg = overflowing_call(h)
    call_id = h.call_id(leg)
    h.digit(leg, "1")
    h.finish_playing(leg, times=12)
    h.clock.advance(8)  # no key: goodbye
    assert h.media.prompts(leg)[-1] == "goodbye"
    h.finish_playing(leg)
    assert tasks(h) == [] and h.record(call_id).outcome == "overflow"


def test_the_task_keeps_the_callers_place_ahead_of_later_calls(make):
    h = make(secretaries={"*": (SEC1,)})
    secretary = busy_secretary(h)
    first = queued_call(h)  # t0
    h.clock.advance(30)
    later = queued_call(h, caller="+33655555555")  # t0 + 30
    h.clock.advance(60)  # t0 + 90: the first overflows (wait_max 90 s) and asks for a callback
    assert h.media.prompts(first)[-1] == "callback_offer"
    h.digit(first, "1")
    h.digit(first, "1")
    h.finish_playing(first)
    h.ended(secretary)
    h.clock.advance(15)  # wrap-up over: the task goes first, though the later call is still waiting
    offer = h.media.last(p.Dial)
    assert offer.uri == SEC1 and offer.display_name.startswith("Rappel - ")
    assert offer.headers["X-Callrouter-Task-Id"] == tasks(h)[0].id
    assert h.controller.sessions[later].state.value == "queued"


def test_secretary_then_patient_then_bridge_and_the_task_is_done(make):
    h = make(secretaries={})
    leg = overflowing_call(h)
    digits(h, leg, "11")
    h.finish_playing(leg)
    [task] = tasks(h)
    phone = _add_fixed_phone(h, SEC1)
    offer = h.media.last(p.Dial)
    assert offer.uri == SEC1
    pops = [m.payload for m in h.published.on("/screen-pop")]
    assert pops[-1]["reason"] == "rappel demandé" and pops[-1]["caller"]["number"] == PATIENT
    h.answered(offer.leg)
    patient = h.media.last(p.Dial)
    assert patient.uri == f"sip:{PATIENT}@127.0.0.1:5080" and patient.leg != offer.leg
    assert h.media.prompts(offer.leg)[-1] == "callback_task_intro"
    assert phone.state == "on_call"
    h.answered(patient.leg)
    assert h.media.prompts(patient.leg) == ["callback_task_press_1"] and not h.media.commands(p.Bridge)
    h.digit(patient.leg, "2")  # not the key: still waiting for 1
    assert not h.media.commands(p.Bridge)
    h.digit(patient.leg, "1")  # a person is there
    assert h.media.last(p.Bridge) == p.Bridge(offer.leg, patient.leg)
    done = h.tasks.get(task.id) if h.recorder.flush(10) else None
    assert (done.state, done.done_leg, done.attempts, done.assigned_to) == ("done", patient.leg, 1, SEC1)
    h.ended(patient.leg)
    assert h.media.last(p.Hangup).leg == offer.leg
    assert phone.state == "wrap_up"


def test_a_voicemail_answering_the_patients_phone_is_a_failed_attempt_back_in_line(make):
    """Her line answers but nobody presses 1 within callback_confirm_s: the answering machine is hung
    up on, the task is not done, and it is offered again after callback_retry_s."""
    h = make(secretaries={}, callback_retry_s=600, callback_confirm_s=15)
    leg = overflowing_call(h)
    digits(h, leg, "11")
    h.finish_playing(leg)
    [task] = tasks(h)
    _add_fixed_phone(h, SEC1)
    offer = h.media.last(p.Dial)
    h.answered(offer.leg)
    patient = h.media.last(p.Dial)
    h.answered(patient.leg)  # the voicemail picks up
    h.clock.advance(14)
    assert not h.media.commands(p.Hangup, patient.leg)
    h.clock.advance(1)
    assert h.media.last(p.Hangup, patient.leg).leg == patient.leg and not h.media.commands(p.Bridge)
    assert h.media.prompts(offer.leg)[-1] == "callback_task_no_answer"
    h.ended(patient.leg)  # the worker reports the leg we hung up
    h.clock.advance(4)
    assert h.media.last(p.Hangup).leg == offer.leg
    h.ended(offer.leg)
    assert h.recorder.flush(10)
    stored = h.tasks.get(task.id)
    assert (stored.state, stored.attempts, stored.done_at) == ("assigned", 1, None)
    assert h.controller.metrics.callback_tasks.labels("cabinet-dr-martin", "done")._value.get() == 0
    dials = len(h.media.commands(p.Dial))
    h.clock.advance(600)
    assert len(h.media.commands(p.Dial)) == dials + 1  # offered again to the secretary
    assert h.media.last(p.Dial).uri == SEC1


def test_a_patient_who_does_not_answer_is_tried_again_later_then_left_to_the_secretaries(make):
    h = make(secretaries={"*": (SEC1,)}, callback_attempts=2, callback_retry_s=600)
    secretary = busy_secretary(h)
    leg = queued_call(h)
    h.clock.advance(90)
    digits(h, leg, "11")
    h.finish_playing(leg)
    h.ended(secretary)
    h.clock.advance(15)
    for attempt in (1, 2):
        offer = h.media.last(p.Dial)
        assert offer.display_name.startswith("Rappel - ")
        h.answered(offer.leg)
        patient = h.media.last(p.Dial)
        h.ended(patient.leg, code=408)  # no answer
        assert h.media.prompts(offer.leg)[-1] == "callback_task_no_answer"
        h.clock.advance(4)
        assert h.media.last(p.Hangup).leg == offer.leg
        [task] = tasks(h)
        assert (task.state, task.attempts) == ("assigned", attempt)
        dials = len(h.media.commands(p.Dial))
        h.clock.advance(599)
        assert len(h.media.commands(p.Dial)) == dials  # not before the retry delay
        h.clock.advance(1)
    assert len(h.media.commands(p.Dial)) == dials  # two attempts: left to the secretaries
    assert h.controller.callbacks.tasks == {}


def test_a_task_offer_not_answered_goes_to_the_next_secretary_keeping_its_place(make):
    h = make(secretaries={})
    leg = overflowing_call(h)
    digits(h, leg, "11")
    h.finish_playing(leg)
    _add_fixed_phone(h, SEC1)
    first = h.media.last(p.Dial)
    _add_fixed_phone(h, SEC2)
    h.clock.advance(20)  # ring timeout
    assert h.media.last(p.Hangup).leg == first.leg
    assert h.media.last(p.Dial).uri == SEC2
    assert h.desk.secretary(SEC1).missed == 1


def test_a_task_nobody_takes_expires_at_its_deadline(make):
    h = make(secretaries={}, callback_expiry_s=3600)
    leg = overflowing_call(h)
    digits(h, leg, "11")
    h.finish_playing(leg)
    h.clock.advance(3599)
    assert tasks(h)[0].state == "open"
    h.clock.advance(1)
    assert tasks(h)[0].state == "expired" and h.controller.callbacks.tasks == {}
    _add_fixed_phone(h, SEC1)
    assert not h.media.commands(p.Dial)


def test_pending_tasks_are_back_in_line_after_a_restart(make, tmp_path):
    h = make(secretaries={"*": (SEC1,)})
    now = h.controller.now()
    h.tasks.create("cabinet-dr-martin", "0612345678", "overflow", now - dt.timedelta(minutes=5),
                   now + dt.timedelta(hours=1), task_id="t-restored", queue="general",
                   place_at=now - dt.timedelta(minutes=5))
    h.tasks.create("cabinet-dr-martin", "0612345679", "secretary", now, now + dt.timedelta(hours=1),
                   task_id="t-by-hand")
    router = h.controller._router()
    restored = h.controller.callbacks.restore(h.tasks.pending(now), dict(router.dialplans))
    assert restored == 1  # tasks typed by a secretary are hers to call, not queued
    assert h.media.last(p.Dial).headers["X-Callrouter-Task-Id"] == "t-restored"


def _add_fixed_phone(h, uri):
    """A fixed phone joins every queue (as if the settings had it), and calls are dispatched."""
    from callrouter.domain.serving import Secretary

    queues = h.desk.queues
    secretary = queues.find(uri) or Secretary(uri)
    queues._secretaries.setdefault(uri, secretary)
    queues._by_key.setdefault("*", [])
    if secretary not in queues._by_key["*"]:
        queues._by_key["*"].append(secretary)
    h.controller.line.dispatch()
    return secretary


def test_a_secretary_calls_a_voicemail_task_back_from_her_console(make):
    import pytest

    from callrouter.ports import SecretaryStateError

    h = make(secretaries={"*": (SEC1, SEC2)})
    now = h.controller.now()
    view = h.tasks.create("cabinet-dr-martin", "06 12 34 56 78", "voicemail", now, now + dt.timedelta(hours=2),
                          task_id="t-voicemail")
    busy = busy_secretary(h)  # SEC1 (idle longest) is on a call
    with pytest.raises(SecretaryStateError, match="finish the current call"):
        h.controller.callbacks.call_now(view, SEC1)
    h.controller.callbacks.call_now(view, SEC2)
    ring = h.media.last(p.Dial)
    assert ring.uri == SEC2 and ring.headers["X-Callrouter-Task-Id"] == "t-voicemail"
    h.answered(ring.leg)
    patient = h.media.last(p.Dial)
    h.answered(patient.leg)
    h.digit(patient.leg, "1")
    assert h.media.last(p.Bridge) == p.Bridge(ring.leg, patient.leg)
    assert h.recorder.flush(10)
    assert h.tasks.get("t-voicemail").state == "done"
    h.ended(busy)


def test_a_voicemail_message_becomes_a_task_for_the_secretaries_not_a_place_in_line(harness):
    h = harness
    h.clock.advance(12 * 3600)  # 21:00 Paris: closed, the menu offers a message
    leg = h.incoming(caller="0612345678")
    call_id = h.call_id(leg)
    h.finish_playing(leg)
    h.digit(leg, "3")
    h.finish_playing(leg, 2)
    record = h.media.last(p.Record)
    h.legs.media_event("w0", p.RecordingFinished(leg, record.path, 7.5, "digit"))
    [task] = tasks(h)
    assert (task.source, task.number, task.call_id, task.state) == ("voicemail", PATIENT, call_id, "open")
    assert h.desk.queues.waiting() == []  # they listen to the message first


def test_an_empty_message_or_a_hidden_number_makes_no_task(make):
    for caller, seconds in (("anonymous", 7.5), (PATIENT, 0.4)):
        h = make(secretaries={})
        h.clock.advance(12 * 3600)
        leg = h.incoming(caller=caller)
        h.finish_playing(leg)
        h.digit(leg, "3")
        h.finish_playing(leg, 2)
        h.ended(leg)
        h.legs.media_event("w0", p.RecordingFinished(leg, h.media.last(p.Record).path, seconds, "leg_ended"))
        assert tasks(h) == []


def test_a_lost_nodes_task_handed_over_goes_in_line_at_its_place_with_the_dialplans_in_force(make):
    """callrouter.cluster.reaper hands over the tasks it made without dialplans: those in force now."""
    h = make(secretaries={"*": (SEC1,)})
    now = h.controller.now()
    lost = h.tasks.create("cabinet-dr-martin", "0612345678", "node_lost", now, now + dt.timedelta(hours=1),
                          task_id="lost-call-1", queue="general", place_at=now - dt.timedelta(minutes=2))
    message = h.tasks.create("cabinet-dr-martin", "0612345679", "voicemail", now, now + dt.timedelta(hours=1),
                             task_id="t-message")
    assert h.controller.callbacks.restore([lost, message]) == 1
    assert h.media.last(p.Dial).headers["X-Callrouter-Task-Id"] == "lost-call-1"
    assert h.controller.callbacks.restore([lost]) == 0  # already in hand: never twice
