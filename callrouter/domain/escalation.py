"""Escalation chains as a pure state machine: `next_step(chain, now)` says what to do now.

A chain walks the tier's steps in order, round after round (`repeat` extra rounds), stopping at the
first acknowledgement. Its state is only what the store keeps: when it started, whether it was
acknowledged, and one record per (round, step) already attempted. So the same function serves a
running chain and one resumed after a restart: waits are computed from the stored timestamps.

A step's `wait_s` is how long to wait for an acknowledgement after that step before the next one.
A step that failed, was skipped (nobody to reach, no phone or e-mail) or is "unknown" (a restart
found it mid-send) does not get a wait for "failed"/"skipped": the chain moves on at once. An
"unknown" step may have reached the practitioner, so its wait is honoured from when it started.

A practitioner who declines by SMS ("NON", see callrouter.domain.sms_reply) is out of the chain:
the wait after a step that reached them no longer holds, and the chain's later steps that would
reach them again are skipped ("declined"), so the chain moves on at once to someone else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Union
from zoneinfo import ZoneInfo

from callrouter.domain.model import Dialplan, EscalationStep, EscalationTier
from callrouter.domain.oncall import on_call_at

SENT, FAILED, SKIPPED, UNKNOWN = "sent", "failed", "skipped", "unknown"
STEP_RESULTS = (SENT, FAILED, SKIPPED, UNKNOWN)
# Results after which the practitioner may have been reached: the step's wait applies.
REACHED = frozenset({SENT, UNKNOWN})

ACKNOWLEDGED, EXHAUSTED, CANCELLED = "acknowledged", "exhausted", "cancelled"
CHANNEL_FIELD = {"sms": "phone", "call": "phone", "email": "email"}


@dataclass(frozen=True)
class StepRecord:
    """One attempted step: which round and step, how it went, when."""

    round: int
    index: int
    result: str
    at: dt.datetime
    practitioner: str | None = None


@dataclass(frozen=True)
class ChainState:
    started_at: dt.datetime
    records: tuple[StepRecord, ...] = ()
    acknowledged: bool = False
    cancelled: bool = False
    declined: frozenset[str] = frozenset()  # practitioners who answered that they cannot


@dataclass(frozen=True)
class Send:
    """Send step `index` of `round` to `practitioner` at `destination` now."""

    round: int
    index: int
    channel: str
    practitioner: str
    destination: str
    wait_s: float


@dataclass(frozen=True)
class Skip:
    """Step `index` of `round` cannot be sent (nobody on call, no phone...): record it, move on."""

    round: int
    index: int
    channel: str
    practitioner: str | None
    reason: str


@dataclass(frozen=True)
class Wait:
    until: dt.datetime


@dataclass(frozen=True)
class Done:
    outcome: str


Next = Union[Send, Skip, Wait, Done]


def positions(tier: EscalationTier) -> list[tuple[int, int]]:
    """Every (round, step index) of the chain, in order."""
    return [(r, i) for r in range(tier.repeat + 1) for i in range(len(tier.steps))]


def max_sends(tier: EscalationTier) -> int:
    return len(tier.steps) * (tier.repeat + 1)


def next_step(tier: EscalationTier, dialplan: Dialplan, state: ChainState, now: dt.datetime) -> Next:
    """What the chain must do at `now` (an aware datetime)."""
    if state.acknowledged:
        return Done(ACKNOWLEDGED)
    if state.cancelled:
        return Done(CANCELLED)
    done = {(r.round, r.index): r for r in state.records}
    todo = [p for p in positions(tier) if p not in done]
    last = _last(state)
    if last is not None and last.result in REACHED and last.practitioner not in state.declined:
        until = last.at + dt.timedelta(seconds=tier.steps[last.index].wait_s)
        if now < until:
            return Wait(until)
    if not todo:
        return Done(EXHAUSTED)
    rnd, index = todo[0]
    step = resolve(tier.steps[index], rnd, index, dialplan, now)
    if isinstance(step, Send) and step.practitioner in state.declined:
        return Skip(rnd, index, step.channel, step.practitioner, f"declined by {step.practitioner}")
    return step


def _last(state: ChainState) -> StepRecord | None:
    if not state.records:
        return None
    return max(state.records, key=lambda r: (r.round, r.index))


def resolve(step: EscalationStep, rnd: int, index: int, dialplan: Dialplan, now: dt.datetime) -> Send | Skip:
    """The practitioner and destination a step reaches at `now` (on-call read in local time)."""
    who: str | None
    if step.target == "on_call":
        if dialplan.on_call is None:
            return Skip(rnd, index, step.channel, None, "no on-call rota")
        local = now.astimezone(ZoneInfo(dialplan.calendar.timezone)).replace(tzinfo=None)
        who = on_call_at(dialplan.on_call, local)
        if who is None:
            return Skip(rnd, index, step.channel, None, "nobody on call")
    elif step.target == "backup":
        who = dialplan.on_call.backup if dialplan.on_call else None
        if who is None:
            return Skip(rnd, index, step.channel, None, "no backup declared")
    else:
        who = step.target
    person = dialplan.practitioners.get(who)
    if person is None:
        return Skip(rnd, index, step.channel, who, f"unknown practitioner {who}")
    kind = CHANNEL_FIELD.get(step.channel)
    if kind is None:
        return Skip(rnd, index, step.channel, who, f"unknown channel {step.channel}")
    destination = getattr(person, kind)
    if not destination:
        return Skip(rnd, index, step.channel, who, f"practitioner {who} has no {kind}")
    return Send(rnd, index, step.channel, who, destination, step.wait_s)


# --- events -----------------------------------------------------------------------------------


def step_sent(state: ChainState, rnd: int, index: int, now: dt.datetime,
              practitioner: str | None = None) -> ChainState:
    return _record(state, StepRecord(rnd, index, SENT, now, practitioner))


def step_failed(state: ChainState, rnd: int, index: int, now: dt.datetime) -> ChainState:
    """A channel failure: recorded, and the next step becomes due at once."""
    return _record(state, StepRecord(rnd, index, FAILED, now))


def step_skipped(state: ChainState, rnd: int, index: int, now: dt.datetime) -> ChainState:
    return _record(state, StepRecord(rnd, index, SKIPPED, now))


def declined(state: ChainState, practitioner: str) -> ChainState:
    """A practitioner answered that they cannot: the chain goes on without them, at once."""
    return replace(state, declined=state.declined | {practitioner})


def acknowledged(state: ChainState) -> ChainState:
    """The first acknowledgement stops the chain; later ones change nothing."""
    return replace(state, acknowledged=True)


def _record(state: ChainState, record: StepRecord) -> ChainState:
    if any((r.round, r.index) == (record.round, record.index) for r in state.records):
        return state  # idempotent: a (round, step) is attempted once
    return replace(state, records=state.records + (record,))


__all__ = [
    "ChainState", "StepRecord", "Send", "Skip", "Wait", "Done", "Next", "next_step", "resolve",
    "step_sent", "step_failed", "step_skipped", "acknowledged", "declined", "positions", "max_sends",
    "SENT", "FAILED", "SKIPPED", "UNKNOWN", "ACKNOWLEDGED", "EXHAUSTED", "CANCELLED",
]
