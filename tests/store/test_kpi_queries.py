"""The records of a practice and period read into the facts the indicators take
(callrouter.store.kpi_queries), on SQLite and the real PostgreSQL: records written by the real
repositories, with the decisions' reasons as the controller records them."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from callrouter.domain.call import Call
from callrouter.domain.kpis import Period, practice_kpis
from callrouter.domain.routing import decide, overflow_decision
from callrouter.store.calls import CallRepository
from callrouter.store.escalations import EscalationRepository
from callrouter.store.kpi_queries import KpiQueries, arrival_route, overflow_cause
from callrouter.store.tasks import TaskRepository
from tests.factories import examples

PARIS = ZoneInfo("Europe/Paris")
UTC = dt.timezone.utc
MONDAY = dt.datetime(2027, 2, 1, 9, 0, tzinfo=UTC)  # 10:00 in Paris: the practice is open
EVENING = dt.datetime(2027, 2, 1, 20, 0, tzinfo=UTC)  # 21:00: closed
NUMBER = "+33143550101"


def s(seconds: float) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)


def record(calls: CallRepository, call_id: str, at: dt.datetime, *, digits: str = "", queued: float | None = None,
           answered: float | None = None, ended: float | None = 60, outcome: str = "answered",
           overflow: str | None = None, practice: str = "cabinet-dr-martin") -> None:
    """A call recorded as the controller records it: its decisions, queue, answer and end."""
    dialplan = examples()["cabinet-dr-martin"]
    calls.open_call(call_id, practice, NUMBER, "+33612345678", at)
    call = Call(NUMBER, "+33612345678", arrived_at=at)
    d = decide(dialplan, call, at)
    calls.set_route(call_id, d.route, d.reason or "", at, d.dialplan_version, d.why)
    for i, digit in enumerate(digits):
        calls.add_ivr_answer(call_id, "triage", digit, at + s(i + 1))
        call = call.with_digit(digit)
        d = decide(dialplan, call, at)
        calls.set_route(call_id, d.route, d.reason or "", at + s(i + 1), d.dialplan_version, d.why)
    if queued is not None:
        calls.queued(call_id, "general", at + s(queued))
    if overflow is not None:
        d = overflow_decision(dialplan, call, at, overflow)
        calls.set_route(call_id, d.route, f"{d.reason or ''}; overflow on {overflow}".lstrip("; "), at + s(20),
                        d.dialplan_version, d.why)
    if answered is not None:
        calls.answered(call_id, "sip:lea@edge", at + s(answered))
    if ended is not None:
        calls.close_call(call_id, outcome, at + s(ended))


def test_the_records_of_a_day_become_the_facts_of_the_indicators(db):
    calls, tasks, chains = CallRepository(db), TaskRepository(db), EscalationRepository(db)
    record(calls, "answered", MONDAY, digits="3", queued=5, answered=20)
    record(calls, "late", MONDAY + s(60), digits="3", queued=5, answered=60)
    record(calls, "short", MONDAY + s(120), digits="3", queued=5, ended=8, outcome="abandoned")
    record(calls, "nobody", MONDAY + s(180), digits="3", overflow="nobody", ended=40, outcome="callback_requested")
    record(calls, "gave-up", MONDAY + s(240), queued=5, overflow="wait", ended=100, outcome="abandoned")
    record(calls, "waiting", MONDAY + s(300), digits="4", queued=5, ended=None)
    record(calls, "evening", EVENING, digits="3", ended=30, outcome="voicemail")
    record(calls, "other-practice", MONDAY, queued=1, answered=2, practice="msp-val-de-moselle")
    record(calls, "yesterday", MONDAY - dt.timedelta(days=1), queued=1, answered=2)
    task = tasks.create("cabinet-dr-martin", "+33612345678", "overflow", MONDAY + s(40), MONDAY + dt.timedelta(days=1),
                        call_id="nobody")
    tasks.done(task.id, None, None, MONDAY + s(940))
    tasks.create("cabinet-dr-martin", "+33612345678", "voicemail", EVENING + s(30), EVENING + dt.timedelta(days=1))
    acked = chains.create("evening", "cabinet-dr-martin", "urgent", "+33612345678", EVENING)
    chains.acknowledge(acked.id, "dr-roux", "sms", EVENING + s(240))
    exhausted = chains.create(None, "cabinet-dr-martin", "urgent", "+33612345678", EVENING + s(5))
    chains.record_reply([exhausted.id], EVENING + s(60), "+33*******02", {exhausted.id: "dr-roux"}, "webhook", "no",
                        None, "declined")
    chains.finish(exhausted.id, "exhausted", EVENING + s(600))

    since, until = Period.day(dt.date(2027, 2, 1)).bounds(PARIS)
    records = KpiQueries(db).records(["cabinet-dr-martin"], since, until)
    facts = {c.id: c for c in records.calls}
    assert set(facts) == {"answered", "late", "short", "nobody", "gave-up", "waiting", "evening"}
    assert facts["answered"].route == "open" and facts["answered"].menu and facts["answered"].queue == "general"
    assert (facts["nobody"].route, facts["nobody"].overflow, facts["nobody"].queued_at) == ("open", "nobody", None)
    assert (facts["gave-up"].overflow, facts["gave-up"].menu) == ("wait", False)
    assert facts["evening"].route == "closed" and facts["answered"].overflow is None
    assert [(t.source, t.state) for t in records.tasks] == [("overflow", "done"), ("voicemail", "open")]
    assert {e.id: (e.declined, e.outcome, e.call_id) for e in records.escalations} == {
        acked.id: (0, "acknowledged", "evening"), exhausted.id: (1, "exhausted", None)}

    k = practice_kpis("cabinet-dr-martin", Period.day(dt.date(2027, 2, 1)), PARIS, records)
    c = k.calls
    assert (c.received, c.for_secretary, c.answered, c.short_abandons, c.overflowed, c.callbacks, c.in_progress) \
        == (7, 6, 2, 1, 1, 1, 1)
    assert (c.service_level.numerator, c.service_level.denominator) == (1, 4)  # late took 55 s
    assert (c.missed.numerator, c.missed.denominator) == (1, 4)
    assert c.answer_time.p50 == 35.0
    assert k.callbacks.completion.numerator == 1 and k.callbacks.delay.p50 == 900.0
    assert k.callbacks.messages_left == 1
    [urgent] = k.escalations
    assert (urgent.started, urgent.acknowledged, urgent.declined_steps, urgent.exhausted) == (2, 1, 1, 1)
    assert urgent.ack_delay.p50 == 240.0 and urgent.unacknowledged == (exhausted.id,)
    assert k.out_of_hours.received == 1 and k.out_of_hours.got["escalation"] == 1


def test_no_practice_no_query(db):
    assert KpiQueries(db).records([], MONDAY, EVENING).calls == ()


def test_the_arrival_route_and_the_overflow_cause_are_read_from_the_reasons():
    why = "open (hours)\nroute 'holiday': announce\noverflow (length): voicemail"
    assert arrival_route("overflow", why) == "holiday" and arrival_route("closed", None) == "closed"
    assert arrival_route("overflow", None) is None
    assert overflow_cause("rendez-vous; overflow on nobody", None) == "nobody"
    assert overflow_cause(None, why) == "length" and overflow_cause("rendez-vous", "") is None
