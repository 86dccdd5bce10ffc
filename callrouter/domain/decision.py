"""What to do with a call, and why: the output of `decide()`."""

from __future__ import annotations

from dataclasses import dataclass

from callrouter.domain.model import (
    Action,
    AnnounceAction,
    CallbackOfferAction,
    EscalateAction,
    ForwardAction,
    HangupAction,
    IvrAction,
    QueueAction,
    VoicemailAction,
)


@dataclass(frozen=True)
class Decision:
    """The action to carry out now, the escalation tier to start (if any), and the reasons.

    `dialplan_version` names the exact rules in force, so a call can be explained later.
    """

    practice: str | None
    site: str | None
    dialplan_version: str | None
    status: str  # calendar status, or "unknown_number"
    route: str  # route key used: open, closed, holiday, closure, closure:<reason>, none
    action: Action
    why: tuple[str, ...]
    reason: str | None = None  # IVR reason label: appointment, results...
    tier: str | None = None  # escalation tier to start
    # A SIP code to refuse the call with, never answering it (404: no practice has the number).
    # An answered call is billed to the trunk's customer, so a call nobody serves is not answered.
    reject: int | None = None

    def to_dict(self) -> dict:
        return {
            "practice": self.practice,
            "site": self.site,
            "dialplan_version": self.dialplan_version,
            "status": self.status,
            "route": self.route,
            "action": action_to_dict(self.action),
            "reason": self.reason,
            "tier": self.tier,
            "reject": self.reject,
            "why": list(self.why),
        }


def action_to_dict(action: Action | None) -> dict | None:
    if action is None:
        return None
    match action:
        case IvrAction(menu=m):
            return {"kind": "ivr", "menu": m}
        case QueueAction(queue=q, announce=a):
            return {"kind": "queue", "queue": q, "announce": a}
        case AnnounceAction(prompt=p, then=t):
            return {"kind": "announce", "prompt": p, "then": action_to_dict(t)}
        case VoicemailAction(announce=a):
            return {"kind": "voicemail", "announce": a}
        case ForwardAction(destination=d, announce=a):
            return {"kind": "forward", "destination": d, "announce": a}
        case CallbackOfferAction(announce=a):
            return {"kind": "callback_offer", "announce": a}
        case EscalateAction(tier=t):
            return {"kind": "escalate", "tier": t}
        case HangupAction():
            return {"kind": "hangup"}
    raise TypeError(f"not an action: {action!r}")


def describe_action(action: Action | None) -> str:
    """One line for an administrator."""
    match action:
        case None:
            return "nothing"
        case IvrAction(menu=m):
            return f"IVR menu '{m}'"
        case QueueAction(queue=q, announce=a):
            return f"queue '{q}'" + (f" after prompt '{a}'" if a else "")
        case AnnounceAction(prompt=p, then=t):
            return f"announce '{p}', then {describe_action(t) if t else 'hang up'}"
        case VoicemailAction(announce=a):
            return "voicemail" + (f" after prompt '{a}'" if a else "")
        case ForwardAction(destination=d):
            return f"forward to {d}"
        case CallbackOfferAction():
            return "offer a callback"
        case EscalateAction(tier=t):
            return f"escalate, tier '{t}'"
        case HangupAction():
            return "hang up"
    raise TypeError(f"not an action: {action!r}")
