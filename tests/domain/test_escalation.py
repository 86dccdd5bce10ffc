"""The escalation chain state machine: waits, stop on acknowledgement, exhaustion, failures."""

import datetime as dt

import pytest
from hypothesis import given, settings, strategies as st

from callrouter.domain import escalation as e
from callrouter.domain.model import (
    CalendarSpec, Dialplan, EscalationStep, EscalationTier, HangupAction, OnCallRota, Practitioner,
    RotaEntry, Routes, TimeRange, WeeklyHours,
)

T0 = dt.datetime(2026, 11, 23, 21, 0, tzinfo=dt.timezone.utc)  # 22:00 in Paris, a Monday


def dialplan(**overrides) -> Dialplan:
    people = {
        "dr-martin": Practitioner("dr-martin", "Dr Martin", phone="+33611111111", email="martin@example.org"),
        "dr-roux": Practitioner("dr-roux", "Dr Roux", phone="+33622222222", email="roux@example.org"),
        "dr-nophone": Practitioner("dr-nophone", "Dr Sans", email="sans@example.org"),
    }
    rota = OnCallRota(weekly=(RotaEntry(tuple(range(7)), TimeRange(19 * 60, 8 * 60), "dr-martin"),),
                      backup="dr-roux")
    values = dict(practice="cab", name="Cabinet Test", version="v1", source="cab.yaml", numbers=(),
                  calendar=CalendarSpec("Europe/Paris", "FR", None, WeeklyHours()),
                  routes=Routes(HangupAction(), HangupAction()), practitioners=people, on_call=rota)
    values.update(overrides)
    return Dialplan(**values)


URGENT = EscalationTier("urgent", (
    EscalationStep("sms", "on_call", wait_s=0),
    EscalationStep("email", "on_call", wait_s=180),
    EscalationStep("sms", "backup", wait_s=180),
), repeat=1)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("records, now, expected", [
    ((), 0, e.Send(0, 0, "sms", "dr-martin", "+33611111111", 0)),
    (((0, 0, e.SENT, 0),), 0, e.Send(0, 1, "email", "dr-martin", "martin@example.org", 180)),
    (((0, 0, e.SENT, 0), (0, 1, e.SENT, 0)), 60, e.Wait(at(180))),
    (((0, 0, e.SENT, 0), (0, 1, e.SENT, 0)), 180, e.Send(0, 2, "sms", "dr-roux", "+33622222222", 180)),
    (((0, 0, e.SENT, 0), (0, 1, e.FAILED, 0)), 0, e.Send(0, 2, "sms", "dr-roux", "+33622222222", 180)),
    (((0, 0, e.SENT, 0), (0, 1, e.UNKNOWN, 0)), 10, e.Wait(at(180))),
    (((0, 0, e.SENT, 0), (0, 1, e.SENT, 0), (0, 2, e.SENT, 180)), 360,
     e.Send(1, 0, "sms", "dr-martin", "+33611111111", 0)),
], ids=["first", "no-wait-step", "waiting", "wait-over", "failure-moves-on", "unknown-waits",
        "second-round"])
def test_next_step(records, now, expected):
    state = e.ChainState(T0, tuple(e.StepRecord(r, i, res, at(s)) for r, i, res, s in records))
    assert e.next_step(URGENT, dialplan(), state, at(now)) == expected


def test_last_step_of_last_round_waits_then_the_chain_is_exhausted():
    records = tuple(e.StepRecord(r, i, e.SENT, at(0)) for r, i in e.positions(URGENT))
    state = e.ChainState(T0, records)
    assert e.next_step(URGENT, dialplan(), state, at(10)) == e.Wait(at(180))
    assert e.next_step(URGENT, dialplan(), state, at(180)) == e.Done(e.EXHAUSTED)


def test_acknowledged_chain_is_done_whatever_remains():
    state = e.acknowledged(e.ChainState(T0))
    assert e.next_step(URGENT, dialplan(), state, at(0)) == e.Done(e.ACKNOWLEDGED)


def test_on_call_is_read_in_the_practice_local_time():
    """09:00 Paris on a Monday: the night rota (19:00-08:00) has ended, nobody is on call."""
    morning = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)
    assert e.next_step(URGENT, dialplan(), e.ChainState(morning), morning) == \
        e.Skip(0, 0, "sms", None, "nobody on call")
    seven_utc = dt.datetime(2026, 11, 23, 6, 59, tzinfo=dt.timezone.utc)  # 07:59 Paris
    assert e.next_step(URGENT, dialplan(), e.ChainState(seven_utc), seven_utc).practitioner == "dr-martin"


@pytest.mark.parametrize("step, reason", [
    (EscalationStep("sms", "dr-nophone"), "practitioner dr-nophone has no phone"),
    (EscalationStep("sms", "dr-ghost"), "unknown practitioner dr-ghost"),
])
def test_unreachable_targets_are_skipped_with_a_reason(step, reason):
    tier = EscalationTier("t", (step,))
    assert e.next_step(tier, dialplan(), e.ChainState(T0), T0).reason == reason


def test_no_backup_is_a_skip():
    tier = EscalationTier("t", (EscalationStep("sms", "backup"),))
    plan = dialplan(on_call=OnCallRota())
    assert e.next_step(tier, plan, e.ChainState(T0), T0) == e.Skip(0, 0, "sms", None, "no backup declared")


def test_a_step_is_recorded_once():
    state = e.step_sent(e.ChainState(T0), 0, 0, at(0))
    assert e.step_failed(state, 0, 0, at(1)) == state


def test_a_decline_ends_the_wait_on_that_practitioner_and_the_chain_moves_on_at_once():
    """dr-martin had the SMS and the e-mail (wait 180 s) and answers NON: dr-roux now, not in 180 s."""
    state = e.step_sent(e.ChainState(T0), 0, 0, at(0), "dr-martin")
    state = e.step_sent(state, 0, 1, at(0), "dr-martin")
    assert e.next_step(URGENT, dialplan(), state, at(20)) == e.Wait(at(180))
    state = e.declined(state, "dr-martin")
    assert e.next_step(URGENT, dialplan(), state, at(20)) == e.Send(0, 2, "sms", "dr-roux", "+33622222222", 180)


def test_a_decline_does_not_cut_the_wait_on_someone_else():
    state = e.step_sent(e.ChainState(T0), 0, 0, at(0), "dr-martin")
    state = e.step_sent(state, 0, 1, at(0), "dr-martin")
    state = e.declined(e.step_sent(state, 0, 2, at(10), "dr-roux"), "dr-martin")
    assert e.next_step(URGENT, dialplan(), state, at(20)) == e.Wait(at(190))


def test_later_steps_to_a_practitioner_who_declined_are_skipped():
    state = e.declined(e.step_sent(e.ChainState(T0), 0, 0, at(0), "dr-martin"), "dr-martin")
    assert e.next_step(URGENT, dialplan(), state, at(5)) == \
        e.Skip(0, 1, "email", "dr-martin", "declined by dr-martin")


steps = st.builds(EscalationStep, channel=st.sampled_from(["sms", "email", "call"]),
                  target=st.sampled_from(["on_call", "backup", "dr-roux", "dr-nophone", "dr-ghost"]),
                  wait_s=st.sampled_from([0.0, 30.0, 180.0]))
tiers = st.builds(EscalationTier, name=st.just("t"), steps=st.lists(steps, min_size=1, max_size=4).map(tuple),
                  repeat=st.integers(0, 3))


@settings(max_examples=200, deadline=None)
@given(tier=tiers, outcomes=st.lists(st.booleans(), max_size=20), ack_after=st.none() | st.integers(0, 20))
def test_a_chain_ends_within_its_bound_and_never_sends_after_an_ack(tier, outcomes, ack_after):
    plan = dialplan()
    state, now, sends, acked = e.ChainState(T0), T0, 0, False
    for iteration in range(4 * e.max_sends(tier) + 2):
        if ack_after is not None and iteration == ack_after:
            state, acked = e.acknowledged(state), True
        nxt = e.next_step(tier, plan, state, now)
        if isinstance(nxt, e.Done):
            assert nxt.outcome == (e.ACKNOWLEDGED if acked else e.EXHAUSTED)
            break
        if isinstance(nxt, e.Wait):
            assert nxt.until > now
            now = nxt.until
        elif isinstance(nxt, e.Skip):
            state = e.step_skipped(state, nxt.round, nxt.index, now)
        else:
            assert not acked
            sends += 1
            ok = outcomes[sends % len(outcomes)] if outcomes else True
            state = (e.step_sent if ok else e.step_failed)(state, nxt.round, nxt.index, now)
    else:
        pytest.fail("the chain did not end")
    assert sends <= e.max_sends(tier)


@settings(max_examples=200, deadline=None)
@given(tier=tiers, decliners=st.sets(st.sampled_from(["dr-martin", "dr-roux"])),
       decline_after=st.integers(0, 6))
def test_a_practitioner_who_declined_is_never_sent_to_again_and_the_chain_still_ends(tier, decliners,
                                                                                     decline_after):
    plan = dialplan()
    state, now = e.ChainState(T0), T0
    for iteration in range(4 * e.max_sends(tier) + 2):
        if iteration == decline_after:
            for who in decliners:
                state = e.declined(state, who)
        nxt = e.next_step(tier, plan, state, now)
        if isinstance(nxt, e.Done):
            assert nxt.outcome == e.EXHAUSTED
            break
        if isinstance(nxt, e.Wait):
            assert nxt.until > now
            now = nxt.until
        elif isinstance(nxt, e.Skip):
            state = e.step_skipped(state, nxt.round, nxt.index, now)
        else:
            assert nxt.practitioner not in state.declined
            state = e.step_sent(state, nxt.round, nxt.index, now, nxt.practitioner)
    else:
        pytest.fail("the chain did not end")
