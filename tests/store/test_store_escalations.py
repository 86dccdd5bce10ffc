"""The escalation repository on SQLite and PostgreSQL: claims, first ack wins, resume, reports."""

import csv
import datetime as dt
import io

from callrouter.domain import escalation as chain
from callrouter.store.audit import Actor, AuditLog
from callrouter.store.escalations import EscalationQuery, EscalationRepository

T0 = dt.datetime(2026, 11, 23, 21, 0, tzinfo=dt.timezone.utc)
ADMIN = Actor("admin", "127.0.0.1")


def at(seconds):
    return T0 + dt.timedelta(seconds=seconds)


def test_a_step_is_claimed_once_so_a_restart_never_sends_it_twice(db):
    repo = EscalationRepository(db)
    e = repo.create("call-1", "cab", "urgent", "+33612345678", T0, "v1")
    assert repo.claim_step(e.id, 0, 0, "sms", "dr-martin", "+33611111111", T0)
    assert not repo.claim_step(e.id, 0, 0, "sms", "dr-martin", "+33611111111", at(5))
    repo.mark_sent(e.id, 0, 0, "gw-1", at(1))
    view = repo.get(e.id)
    assert [(s.state, s.provider_id, s.attempts) for s in view.steps] == [("sent", "gw-1", 1)]
    assert view.chain_state().records == (chain.StepRecord(0, 0, chain.SENT, at(1), "dr-martin"),)
    assert repo.mark_delivered("gw-1")
    assert repo.get(e.id).steps[0].state == "delivered"


def test_the_first_acknowledgement_wins(db):
    repo = EscalationRepository(db)
    e = repo.create("call-1", "cab", "urgent", None, T0)
    first = repo.acknowledge(e.id, "dr-martin", "link", at(30))
    second = repo.acknowledge(e.id, "dr-roux", "sms", at(40))
    assert first.accepted and not second.accepted
    view = repo.get(e.id)
    assert (view.state, view.outcome, view.acknowledged_by, view.acknowledged_via) == \
        ("done", "acknowledged", "dr-martin", "link")
    assert view.ack_delay_s == 30
    assert repo.active() == []


def test_a_late_ack_of_an_exhausted_chain_is_recorded_but_the_outcome_stays(db):
    repo = EscalationRepository(db)
    e = repo.create(None, "cab", "urgent", None, T0)
    assert repo.finish(e.id, chain.EXHAUSTED, at(600))
    assert repo.acknowledge(e.id, "dr-roux", "sms", at(700)).accepted
    view = repo.get(e.id)
    assert (view.outcome, view.acknowledged_by) == ("exhausted", "dr-roux")


def test_sends_interrupted_by_a_crash_become_unknown_and_chains_stay_active(db):
    repo = EscalationRepository(db)
    e = repo.create("call-1", "cab", "urgent", None, T0)
    repo.claim_step(e.id, 0, 0, "sms", "dr-martin", "+33611111111", T0)
    assert repo.mark_interrupted_sends() == 1
    [active] = repo.active()
    assert active.steps[0].state == "unknown"
    assert active.chain_state().records[0].result == chain.UNKNOWN


def test_an_inbound_reply_finds_every_recent_chain_that_reached_that_number_newest_first(db):
    repo = EscalationRepository(db)
    ended_long_ago = repo.create("c-old", "cab", "urgent", None, T0 - dt.timedelta(days=3))
    old = repo.create("c0", "cab", "urgent", None, T0)
    new = repo.create("c1", "cab", "urgent", None, at(60))
    for e in (ended_long_ago, old, new):
        repo.claim_step(e.id, 0, 0, "sms", "dr-martin", "+33611111111", e.started_at)
        repo.mark_sent(e.id, 0, 0, None, e.started_at)
    repo.finish(ended_long_ago.id, chain.EXHAUSTED, T0 - dt.timedelta(days=2))
    found = repo.reached("+33611111111", T0 - dt.timedelta(hours=24))
    assert [(view.id, who) for view, who in found] == [(new.id, "dr-martin"), (old.id, "dr-martin")]
    assert repo.reached("+33699999999", T0) == []


def test_replies_are_logged_on_the_chain_and_a_decline_puts_the_practitioner_out(db):
    repo = EscalationRepository(db)
    e = repo.create("call-1", "cab", "urgent", "+33612345678", T0)
    repo.claim_step(e.id, 0, 0, "sms", "dr-martin", "+33611111111", T0)
    repo.mark_sent(e.id, 0, 0, "gw-1", T0)
    repo.record_reply([e.id], at(20), "+33*******11", {e.id: "dr-martin"}, "webhook", "unclear", None,
                      "explained")
    repo.record_reply([e.id], at(30), "+33*******11", {e.id: "dr-martin"}, "smpp", "no", f"E{e.id}",
                      "declined")
    view = repo.get(e.id)
    assert [(r.understood, r.action, r.via, r.sender) for r in view.replies] == [
        ("unclear", "explained", "webhook", "+33*******11"), ("no", "declined", "smpp", "+33*******11")]
    assert view.declined_by == ("dr-martin",)
    assert view.chain_state().declined == frozenset({"dr-martin"})
    body = view.to_json()
    assert body["reference"] == f"E{e.id}" and body["declined_by"] == ["dr-martin"]
    assert body["replies"][1] == {"at": at(30).isoformat(), "sender": "+33*******11", "practitioner": "dr-martin",
                                  "via": "smpp", "understood": "no", "reference": f"E{e.id}", "action": "declined"}
    text, _ = repo.export_csv(EscalationQuery(frozenset({"cab"})), ADMIN, at(100))
    header, row = list(csv.reader(io.StringIO(text)))
    line = dict(zip(header, row))
    assert line["declined_by"] == "dr-martin" and line["reference"] == f"E{e.id}"
    assert "+33*******11 dr-martin no: declined" in line["replies"] and "+33611111111" not in text


def test_an_exhausted_chain_stores_its_duty_alerts_with_its_end_and_each_is_claimed_once(db):
    a, b = EscalationRepository(db, node="a"), EscalationRepository(db, node="b")
    e = a.create("call-1", "cab", "urgent", None, T0)
    assert a.finish(e.id, chain.EXHAUSTED, at(600), [("sms", "+33600000000"), ("email", "sup@example.org")])
    assert not b.finish(e.id, chain.EXHAUSTED, at(601), [("sms", "+33600000000")])  # ended already: nothing added
    view = a.get(e.id)
    assert view.steps == () and [(d.channel, d.state) for d in view.duty_alerts] == [("sms", "pending"),
                                                                                     ("email", "pending")]
    assert view.chain_state().records == ()  # the duty alerts are not steps of the chain
    assert [(v.id, d.step) for v, d in b.pending_alerts()] == [(e.id, 0), (e.id, 1)]
    assert b.claim_alert(e.id, 0, at(602)) and not a.claim_alert(e.id, 0, at(603))
    assert b.mark_interrupted_sends() == 1  # b died while sending it: never sent again
    assert [d.step for _, d in a.pending_alerts(e.id)] == [1]
    text, _ = a.export_csv(EscalationQuery(frozenset({"cab"})), ADMIN, at(700))
    header, row = list(csv.reader(io.StringIO(text)))
    assert dict(zip(header, row))["duty_alerts"] == "sms:unknown email:pending"


def test_a_step_keeps_what_its_channel_reported(db):
    repo = EscalationRepository(db)
    e = repo.create("call-1", "cab", "urgent", None, T0)
    repo.claim_step(e.id, 0, 0, "call", "dr-martin", "+33611111111", T0)
    repo.mark_sent(e.id, 0, 0, f"esc-{e.id}-0-0/no_key_pressed", at(40), "no_key_pressed")
    step = repo.get(e.id).steps[0]
    assert (step.state, step.outcome) == ("sent", "no_key_pressed")
    assert repo.get(e.id).to_json()["steps"][0]["outcome"] == "no_key_pressed"


def test_export_is_audited_and_carries_no_caller_number(db):
    repo = EscalationRepository(db)
    e = repo.create("call-1", "cab", "urgent", "+33612345678", T0)
    repo.acknowledge(e.id, "dr-martin", "link", at(90))
    text, count = repo.export_csv(EscalationQuery(frozenset({"cab"})), ADMIN, at(100))
    rows = list(csv.reader(io.StringIO(text)))
    assert count == 1 and rows[1][0] == str(e.id) and rows[1][9] == "90"
    assert "+33612345678" not in text
    [entry] = AuditLog(db).query(action="escalations.export")
    assert entry.actor == "admin"


def test_weekly_report_per_practice(db):
    repo = EscalationRepository(db)
    for delay in (60, 120, 600):
        e = repo.create(None, "cab", "urgent", None, T0)
        repo.acknowledge(e.id, "dr-martin", "link", at(delay))
    e = repo.create(None, "cab", "urgent", None, T0)
    repo.finish(e.id, chain.EXHAUSTED, at(900))
    e = repo.create(None, "cab", "urgent", None, T0)
    repo.finish(e.id, chain.CANCELLED, at(30))  # the call was answered first: not unacknowledged
    repo.create(None, "cab", "vital", None, T0)
    repo.create(None, "other", "urgent", None, T0)
    r = repo.weekly_report("cab", T0 - dt.timedelta(days=7), T0 + dt.timedelta(days=1))
    assert r["escalations"] == 6 and r["unacknowledged"] == 1
    assert r["tiers"]["urgent"] == {"escalations": 5, "acknowledged": 3, "unacknowledged": 1, "active": 0,
                                    "cancelled": 1, "ack_delay_p50_seconds": 120, "ack_delay_worst_seconds": 600}
    assert r["tiers"]["vital"]["active"] == 1


def test_a_restart_marks_only_its_own_nodes_sends_unknown(db):
    a, b = EscalationRepository(db, node="a"), EscalationRepository(db, node="b")
    e = a.create("call-1", "cab", "urgent", None, T0)
    a.claim_step(e.id, 0, 0, "sms", "dr-martin", "+33611111111", T0)
    b.claim_step(e.id, 0, 1, "email", "dr-martin", "martin@example.org", T0)
    assert b.mark_interrupted_sends() == 1
    assert [s.state for s in a.get(e.id).steps] == ["sending", "unknown"]
