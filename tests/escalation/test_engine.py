"""The engine with an injected clock, a fake channel and the real database (SQLite, PostgreSQL)."""

import pytest

from callrouter.escalation.ack import Acknowledger
from callrouter.escalation.channels import HttpSmsChannel, OutboxFileChannel, SmtpChannel
from callrouter.escalation.settings import DutyContact
from callrouter.events.notifier import EventNotifier
from callrouter.events.testing import RecordingPublisher
from callrouter.store.escalations import EscalationRepository
from tests.escalation.support import (
    SECRET, SETTINGS, FakeChannel, clock_at, dialplan, make_engine, replace, same_signature,
)


@pytest.fixture
def channels():
    return {"sms": FakeChannel(), "email": FakeChannel()}


def started(engine):
    engine.startService()
    return engine


def run_chain(engine, call="call-1", caller="+33612345678"):
    results = []
    engine.start(call, dialplan(), "urgent", caller).addCallback(results.append)
    return results[0]


def test_fake_channel_matches_the_real_channels():
    for real in (HttpSmsChannel, SmtpChannel, OutboxFileChannel):
        assert same_signature(FakeChannel(), real)


def test_steps_go_out_in_order_with_their_waits_then_the_chain_is_exhausted(db, channels):
    clock = clock_at()
    engine, registry = make_engine(db, channels, clock)
    started(engine)
    eid = run_chain(engine)
    # Step 0 (SMS, no wait) and step 1 (e-mail) leave at once; then a 180 s wait.
    assert [m.to for m in channels["sms"].sent] == ["+33611111111"]
    assert [m.to for m in channels["email"].sent] == ["martin@example.org"]
    clock.advance(179)
    assert len(channels["sms"].sent) == 1
    clock.advance(1)
    assert [m.to for m in channels["sms"].sent] == ["+33611111111", "+33622222222"]
    clock.advance(180)  # round 2: SMS + e-mail again
    assert len(channels["sms"].sent) == 3 and len(channels["email"].sent) == 2
    clock.advance(180)
    assert len(channels["sms"].sent) == 4
    clock.advance(180)
    view = EscalationRepository(db).get(eid)
    assert (view.state, view.outcome) == ("done", "exhausted")
    assert len(view.steps) == 6
    assert registry.get_sample_value("callrouter_escalations_exhausted_total",
                                     {"practice": "cab", "tier": "urgent"}) == 1
    clock.advance(3600)
    assert len(channels["sms"].sent) == 4  # nothing after the end


def test_the_message_is_french_with_callback_number_and_a_signed_link(db, channels):
    engine, _ = make_engine(db, channels, clock_at())
    started(engine)
    eid = run_chain(engine)
    text = channels["sms"].sent[0].text
    assert text.startswith("URGENT Cabinet Test : rappeler le patient au 06 12 34 56 78.")
    assert f"https://cr.example.org/ack/{eid}-0-0-" in text


def test_an_acknowledgement_stops_the_chain(db, channels):
    clock = clock_at()
    engine, registry = make_engine(db, channels, clock)
    started(engine)
    eid = run_chain(engine)
    token = channels["sms"].sent[0].text.rsplit("/ack/", 1)[1]
    clock.advance(30)
    acks = Acknowledger(EscalationRepository(db), SECRET, engine.acknowledged)
    assert acks.by_link(token, engine.now()).status == "acknowledged"
    assert acks.by_link(token, engine.now()).status == "already"
    clock.advance(3600)
    assert len(channels["sms"].sent) == 1
    view = EscalationRepository(db).get(eid)
    assert (view.outcome, view.acknowledged_by, view.acknowledged_via) == ("acknowledged", "dr-martin", "link")
    assert registry.get_sample_value("callrouter_escalation_ack_delay_seconds_sum",
                                     {"practice": "cab", "tier": "urgent"}) == 30
    assert engine.active_ids() == []


def test_an_ack_recorded_elsewhere_is_seen_at_the_next_step(db, channels):
    """No notification (another node's web server took it): the store is read before each step."""
    clock = clock_at()
    engine, _ = make_engine(db, channels, clock)
    started(engine)
    eid = run_chain(engine)
    EscalationRepository(db).acknowledge(eid, "dr-martin", "sms", engine.now())
    clock.advance(180)
    assert len(channels["sms"].sent) == 1


def test_a_forged_link_is_refused(db, channels):
    engine, _ = make_engine(db, channels, clock_at())
    started(engine)
    eid = run_chain(engine)
    acks = Acknowledger(EscalationRepository(db), SECRET, engine.acknowledged)
    assert acks.by_link(f"{eid}-0-0-" + "0" * 32, engine.now()).status == "invalid"
    assert EscalationRepository(db).get(eid).acknowledged_at is None


def test_a_failing_channel_moves_to_the_next_step_at_once(db, channels):
    clock = clock_at()
    channels["email"].fail = True
    engine, registry = make_engine(db, channels, clock)
    started(engine)
    eid = run_chain(engine)
    # e-mail (wait 180) failed: the backup's SMS goes out without waiting.
    assert [m.to for m in channels["sms"].sent] == ["+33611111111", "+33622222222"]
    view = EscalationRepository(db).get(eid)
    assert [s.state for s in view.steps] == ["sent", "failed", "sent"]
    assert view.steps[1].error == "gateway down"
    assert registry.get_sample_value("callrouter_escalation_step_failures_total",
                                     {"practice": "cab", "tier": "urgent", "channel": "email"}) == 1


def test_a_restart_mid_chain_resumes_with_waits_from_stored_times_and_no_duplicate(db, channels):
    clock = clock_at()
    first, _ = make_engine(db, channels, clock)
    started(first)
    eid = run_chain(first)
    clock.advance(100)
    first.stopService()
    # A new engine on the same database, 30 s later: 50 s of the 180 s wait remain.
    clock.advance(30)
    second, _ = make_engine(db, channels, clock)
    started(second)
    assert len(channels["sms"].sent) == 1 and len(channels["email"].sent) == 1
    clock.advance(49)
    assert len(channels["sms"].sent) == 1
    clock.advance(1)
    assert len(channels["sms"].sent) == 2
    assert second.active_ids() == [eid]


def test_a_step_caught_mid_send_by_a_crash_is_not_sent_again(db, channels):
    repo = EscalationRepository(db)
    clock = clock_at()
    view = repo.create("call-1", "cab", "urgent", None, engine_now(clock), "v1")
    repo.claim_step(view.id, 0, 0, "sms", "dr-martin", "+33611111111", engine_now(clock))  # then died
    engine, _ = make_engine(db, channels, clock)
    started(engine)
    assert channels["sms"].sent == []  # step 0 is not re-sent ...
    assert [m.to for m in channels["email"].sent] == ["martin@example.org"]  # ... the chain goes on
    assert repo.get(view.id).steps[0].state == "unknown"


def test_an_unknown_tier_starts_nothing(db, channels):
    engine, _ = make_engine(db, channels, clock_at())
    started(engine)
    results = []
    engine.start("c", dialplan(), "nope", None).addCallback(results.append)
    assert results == [None] and EscalationRepository(db).active() == []


def engine_now(clock):
    import datetime as dt
    return dt.datetime.fromtimestamp(clock.seconds(), dt.timezone.utc)


def test_the_controller_callback_starts_the_chain_for_the_session(db, channels):
    from types import SimpleNamespace

    engine, _ = make_engine(db, channels, clock_at())
    started(engine)
    session = SimpleNamespace(call_id="call-9", dialplan=dialplan(), call=SimpleNamespace(caller="+33612345678"))
    engine.escalate(session, "urgent")
    [view] = EscalationRepository(db).active()
    assert (view.call_id, view.caller, view.tier, view.dialplan_version) == ("call-9", "+33612345678", "urgent", "v1")
    assert len(channels["sms"].sent) == 1


def test_the_session_fields_escalate_reads_exist_on_the_controller_session():
    import dataclasses

    from callrouter.controller.calls import CallSession
    from callrouter.domain.call import Call

    names = {f.name for f in dataclasses.fields(CallSession)}
    assert {"call_id", "dialplan", "call"} <= names
    assert "caller" in {f.name for f in dataclasses.fields(Call)}


def test_a_late_ack_after_exhaustion_is_stored_but_not_counted_as_acknowledged(db, channels):
    clock = clock_at()
    engine, registry = make_engine(db, channels, clock)
    started(engine)
    eid = run_chain(engine)
    for _ in range(10):
        clock.advance(180)
    assert EscalationRepository(db).get(eid).outcome == "exhausted"
    acks = Acknowledger(EscalationRepository(db), SECRET, engine.acknowledged)
    assert acks.by_sms("+33622222222", "OK", engine.now()).accepted
    view = EscalationRepository(db).get(eid)
    assert (view.outcome, view.acknowledged_by) == ("exhausted", "dr-roux")
    assert registry.get_sample_value("callrouter_escalations_acknowledged_total",
                                     {"practice": "cab", "tier": "urgent"}) is None


def test_without_a_voice_channel_a_call_step_goes_out_as_sms_and_keeps_its_wait(db, channels):
    from callrouter.domain.model import EscalationStep, EscalationTier

    tier = EscalationTier("urgent", (EscalationStep("sms", "on_call"), EscalationStep("call", "on_call", wait_s=180),
                                     EscalationStep("call", "backup", wait_s=180)))
    plan = dialplan(escalation={"urgent": tier})
    clock = clock_at()
    engine, _ = make_engine(db, channels, clock, plan)
    started(engine)
    results = []
    engine.start("call-1", plan, "urgent", None).addCallback(results.append)
    assert [m.to for m in channels["sms"].sent] == ["+33611111111", "+33611111111"]
    clock.advance(180)
    assert [m.to for m in channels["sms"].sent][-1] == "+33622222222"
    assert [s.channel for s in EscalationRepository(db).get(results[0]).steps] == ["sms", "sms", "sms"]


# --- SMS replies read, declines, exhausted chains ---------------------------------------------------

def replies(db, engine, answers=None):
    """The acknowledger as the daemon wires it, on the reactor thread already (tests are synchronous)."""
    return Acknowledger(EscalationRepository(db), SECRET, engine.acknowledged, declined=engine.declined,
                        answer=(lambda to, text: answers.append((to, text))) if answers is not None
                        else engine.answer_sms)


def test_a_refusal_by_sms_is_a_decline_and_the_chain_moves_on_at_once(db, channels):
    """"NON je ne peux pas, voyez avec Dr B" used to acknowledge and stop the chain."""
    clock = clock_at()
    engine, registry = make_engine(db, channels, clock)
    started(engine)
    eid = run_chain(engine)
    clock.advance(20)  # dr-martin had the SMS and the e-mail: 160 s of the wait left
    result = replies(db, engine).by_sms("+33611111111", "NON je ne peux pas, voyez avec Dr B", engine.now())
    assert (result.understood, result.action, result.accepted) == ("no", "declined", False)
    view = EscalationRepository(db).get(eid)
    assert view.acknowledged_at is None and view.state == "active"
    assert view.declined_by == ("dr-martin",)
    # dr-roux's SMS at once; then the answer to dr-martin (through the same SMS channel)
    assert [m.to for m in channels["sms"].sent] == ["+33611111111", "+33622222222", "+33611111111"]
    assert channels["sms"].sent[2].text.startswith(f"Refus enregistré pour l'alerte E{eid}")
    [reply] = view.replies
    assert (reply.sender, reply.practitioner, reply.understood, reply.action, reply.via) == \
        ("+33*******11", "dr-martin", "no", "declined", "webhook")
    clock.advance(180)  # round 2: dr-martin's SMS and e-mail are skipped, dr-roux gets his again
    steps = EscalationRepository(db).get(eid).steps
    assert [(s.round, s.step, s.state, s.error) for s in steps[3:]] == [
        (1, 0, "skipped", "declined by dr-martin"), (1, 1, "skipped", "declined by dr-martin"),
        (1, 2, "sent", None)]
    assert registry.get_sample_value("callrouter_escalations_acknowledged_total",
                                     {"practice": "cab", "tier": "urgent"}) is None


def test_only_an_explicit_yes_acknowledges_anything_else_is_answered_and_changes_nothing(db, channels):
    clock = clock_at()
    engine, _ = make_engine(db, channels, clock)
    started(engine)
    eid = run_chain(engine)
    answers = []
    acks = replies(db, engine, answers)
    result = acks.by_sms("+33611111111", "je regarde ça", engine.now())
    assert (result.understood, result.action) == ("unclear", "explained")
    assert answers == [("+33611111111", f"Réponse non comprise. Répondez OK E{eid} pour prendre en charge "
                                        f"l'alerte, ou NON E{eid} si vous ne pouvez pas.")]
    assert EscalationRepository(db).get(eid).acknowledged_at is None
    result = acks.by_sms("+33611111111", "Oui !", engine.now())
    assert (result.understood, result.action, result.accepted) == ("yes", "acknowledged", True)
    view = EscalationRepository(db).get(eid)
    assert (view.outcome, view.acknowledged_by, view.acknowledged_via) == ("acknowledged", "dr-martin", "sms")
    assert [(r.understood, r.action) for r in view.replies] == [("unclear", "explained"), ("yes", "acknowledged")]
    assert acks.by_sms("+33699999999", "OK", engine.now()).action == "ignored"  # a stranger


def test_two_chains_open_to_the_same_number_a_reply_without_reference_is_asked_which(db, channels):
    clock = clock_at()
    engine, _ = make_engine(db, channels, clock)
    started(engine)
    first = run_chain(engine, "call-1")
    second = run_chain(engine, "call-2")
    answers = []
    acks = replies(db, engine, answers)
    result = acks.by_sms("+33611111111", "OK", engine.now())
    assert result.action == "asked_which" and set(result.escalation_ids) == {first, second}
    assert f"E{second}, E{first}" in answers[0][1]
    repo = EscalationRepository(db)
    assert repo.get(first).acknowledged_at is None and repo.get(second).acknowledged_at is None
    assert [r.action for r in repo.get(first).replies] == ["asked_which"]
    result = acks.by_sms("+33611111111", f"ok E{first}", engine.now())
    assert result.accepted and result.escalation_ids == (first,)
    assert repo.get(first).outcome == "acknowledged" and repo.get(second).acknowledged_at is None
    # Now only the second is open: a plain OK is for it.
    assert acks.by_sms("+33611111111", "1", engine.now()).escalation_ids == (second,)


DUTY = replace(SETTINGS, duty_contact=DutyContact(sms="+33600000000", email="supervision@example.org"))


def exhaust(clock):
    for _ in range(10):
        clock.advance(180)


def test_an_exhausted_chain_alerts_the_duty_contact_publishes_and_counts_it(db, channels):
    publisher = RecordingPublisher()
    clock = clock_at()
    engine, registry = make_engine(db, channels, clock, settings=DUTY,
                                   events=EventNotifier(publisher, "node-1", clock))
    started(engine)
    eid = run_chain(engine)
    exhaust(clock)
    view = EscalationRepository(db).get(eid)
    assert view.outcome == "exhausted"
    assert [(a.channel, a.state) for a in view.duty_alerts] == [("sms", "sent"), ("email", "sent")]
    [sms] = [m for m in channels["sms"].sent if m.to == "+33600000000"]
    assert sms.text.startswith(f"ALERTE télésecrétariat : escalade E{eid} URGENT Cabinet Test terminée sans "
                               "prise en charge. Rappeler le patient au 06 12 34 56 78")
    [mail] = [m for m in channels["email"].sent if m.to == "supervision@example.org"]
    assert mail.subject == f"[ALERTE] Cabinet Test : escalade E{eid} sans prise en charge"
    assert "démarrée le 23/11/2026 22:00" in mail.text  # the practice's local time
    [event] = publisher.on("/escalations/cab/exhausted")
    assert event.topic == "callrouter/node-1/escalations/cab/exhausted" and event.qos == 1 and not event.retain
    assert {k: event.payload[k] for k in ("escalation_id", "reference", "tier", "caller", "duty_alerts",
                                          "steps_sent")} == {
        "escalation_id": eid, "reference": f"E{eid}", "tier": "urgent", "caller": "+33*******78",
        "duty_alerts": ["sms", "email"], "steps_sent": 6}
    assert registry.get_sample_value("callrouter_escalations_exhausted_total",
                                     {"practice": "cab", "tier": "urgent"}) == 1
    assert [d["channel"] for d in view.to_json()["duty_alerts"]] == ["sms", "email"]


def test_duty_alerts_are_stored_before_they_are_sent_and_never_sent_twice_across_a_restart(db, channels):
    """The engine dies right after ending the chain (its alerts stored, not sent): the next run sends
    them; a run that dies mid-send leaves `unknown`, never sent again."""
    clock = clock_at()
    hanging = {"sms": _HangingFor(channels["sms"], "+33600000000"), "email": channels["email"]}
    first, _ = make_engine(db, hanging, clock, settings=DUTY)
    started(first)
    eid = run_chain(first)
    exhaust(clock)
    repo = EscalationRepository(db)
    assert [a.state for a in repo.get(eid).duty_alerts] == ["sending", "pending"]  # the SMS hangs: e-mail waits
    first.stopService()
    second, _ = make_engine(db, channels, clock, settings=DUTY)
    started(second)  # resumes: the e-mail still pending is sent, the SMS caught mid-send is not
    assert [a.state for a in repo.get(eid).duty_alerts] == ["unknown", "sent"]
    assert [m.to for m in channels["email"].sent][-1] == "supervision@example.org"
    assert "+33600000000" not in [m.to for m in channels["sms"].sent]
    third, _ = make_engine(db, channels, clock, settings=DUTY)
    started(third)
    assert [m.to for m in channels["email"].sent].count("supervision@example.org") == 1


def test_without_a_duty_contact_the_exhaustion_is_still_counted_and_logged(db, channels, caplog):
    clock = clock_at()
    engine, registry = make_engine(db, channels, clock)
    started(engine)
    eid = run_chain(engine)
    exhaust(clock)
    assert EscalationRepository(db).get(eid).duty_alerts == ()
    assert f"escalation {eid} (cab/urgent) exhausted: nobody acknowledged; no duty contact configured" in caplog.text


class _HangingFor:
    """A channel whose sends to one destination never complete (the process dies before they do)."""

    def __init__(self, inner, destination):
        self.inner, self.destination = inner, destination

    def send(self, message):
        from twisted.internet import defer

        return defer.Deferred() if message.to == self.destination else self.inner.send(message)
