"""What the store says about an escalation chain: frozen views of its rows.

The escalation engine and the acknowledgement paths read chains through these (callrouter.escalation.ports
names the store methods returning them); callrouter.store.escalations builds them from its rows.
`EscalationView.chain_state()` is the pure chain state `callrouter.domain.escalation.next_step` reads.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from callrouter.domain import escalation as chain
from callrouter.domain.sms_reply import reference

ACTIVE, DONE = "active", "done"  # a chain's state
STEP_STATES = ("pending", "sending", "sent", "delivered", "failed", "skipped", "unknown")
# A step row's state as the pure chain reads it: a step still `sending` may or may not have left.
_RESULT = {"sent": chain.SENT, "delivered": chain.SENT, "failed": chain.FAILED,
           "skipped": chain.SKIPPED, "unknown": chain.UNKNOWN, "sending": chain.UNKNOWN}
DECLINED = "declined"  # the action of a reply read as a refusal


class UnknownEscalation(LookupError):
    """No chain has this id."""


@dataclass(frozen=True)
class EscalationQuery:
    """Filters for reading chains (the API's lists and exports, the weekly report)."""

    practices: frozenset[str] | None = None  # None: every practice
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    tier: str | None = None
    outcome: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class StepView:
    round: int
    step: int
    channel: str
    practitioner: str | None
    destination: str | None
    state: str
    attempts: int
    provider_id: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    error: str | None
    outcome: str | None = None  # what the channel reported beyond "it left" (alert calls)

    def to_json(self) -> dict:
        return {"round": self.round, "step": self.step, "channel": self.channel,
                "practitioner": self.practitioner, "state": self.state, "attempts": self.attempts,
                "created_at": self.created_at.isoformat(), "sent_at": iso_or_none(self.sent_at),
                "error": self.error, "outcome": self.outcome}


@dataclass(frozen=True)
class ReplyView:
    """One SMS reply as logged: the sender masked, the text not kept."""

    at: dt.datetime
    sender: str
    practitioner: str | None
    via: str
    understood: str
    reference: str | None
    action: str

    def to_json(self) -> dict:
        return {"at": self.at.isoformat(), "sender": self.sender, "practitioner": self.practitioner,
                "via": self.via, "understood": self.understood, "reference": self.reference,
                "action": self.action}


@dataclass(frozen=True)
class EscalationView:
    id: int
    call_id: str | None
    practice: str
    tier: str
    caller: str | None
    started_at: dt.datetime
    state: str
    outcome: str | None
    ended_at: dt.datetime | None
    acknowledged_by: str | None
    acknowledged_via: str | None
    acknowledged_at: dt.datetime | None
    dialplan_version: str | None
    steps: tuple[StepView, ...]
    triggered_by: str | None = None  # "user:<name>" when started from the console, None: the IVR
    note: str | None = None          # the secretary's short note (e-mail only, never SMS)
    replies: tuple[ReplyView, ...] = ()
    duty_alerts: tuple[StepView, ...] = ()  # to the duty contact, once the chain was exhausted
    taken_by: str | None = None  # the supervisor who took an exhausted chain in hand
    taken_at: dt.datetime | None = None

    @property
    def reference(self) -> str:
        return reference(self.id)

    @property
    def declined_by(self) -> tuple[str, ...]:
        """Practitioners who answered that they cannot take this case, in order."""
        out: list[str] = []
        for r in self.replies:
            if r.action == DECLINED and r.practitioner and r.practitioner not in out:
                out.append(r.practitioner)
        return tuple(out)

    @property
    def ack_delay_s(self) -> float | None:
        if self.acknowledged_at is None:
            return None
        return (self.acknowledged_at - self.started_at).total_seconds()

    def chain_state(self) -> chain.ChainState:
        """The pure chain state this row stands for (what `next_step` reads)."""
        records = tuple(chain.StepRecord(s.round, s.step, _RESULT[s.state], s.sent_at or s.created_at,
                                         s.practitioner)
                        for s in self.steps)
        return chain.ChainState(self.started_at, records, acknowledged=self.acknowledged_at is not None,
                                cancelled=self.outcome == chain.CANCELLED,
                                declined=frozenset(self.declined_by))

    def to_json(self, with_caller: bool = True) -> dict:
        return {
            "id": self.id, "call_id": self.call_id, "practice": self.practice, "tier": self.tier,
            "caller": self.caller if with_caller else None,
            "started_at": self.started_at.isoformat(), "state": self.state, "outcome": self.outcome,
            "ended_at": iso_or_none(self.ended_at), "acknowledged_by": self.acknowledged_by,
            "acknowledged_via": self.acknowledged_via, "acknowledged_at": iso_or_none(self.acknowledged_at),
            "ack_delay_seconds": self.ack_delay_s, "dialplan_version": self.dialplan_version,
            "triggered_by": self.triggered_by, "note": self.note, "reference": self.reference,
            "steps": [s.to_json() for s in self.steps],
            "declined_by": list(self.declined_by),
            "replies": [r.to_json() for r in self.replies],
            "duty_alerts": [{"channel": s.channel, "state": s.state, "created_at": s.created_at.isoformat(),
                             "sent_at": iso_or_none(s.sent_at), "error": s.error} for s in self.duty_alerts],
            "taken_by": self.taken_by, "taken_at": iso_or_none(self.taken_at),
        }


@dataclass(frozen=True)
class AckResult:
    accepted: bool  # False: someone acknowledged first (or no such chain)
    escalation: EscalationView


def iso_or_none(value: dt.datetime | None) -> str | None:
    """An optional time as ISO 8601 (None stays None), as the JSON and CSV forms write it."""
    return None if value is None else value.isoformat()
