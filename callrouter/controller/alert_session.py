"""One alert call's session: its states, what it holds, what the practitioner hears, how it dials.

The machine that drives it is callrouter.controller.alerts (`_HANDLERS[(state, event type)]`);
this module is its data and its ports: the media plane (`AlertMedia`, callrouter.ports.MediaControl) and the call controller
(`LivePatients`), both Protocols so that tests use fakes checked against the real ones.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Protocol

from twisted.internet import defer

from callrouter.controller.player import PromptPlayer, SessionTimers
from callrouter.domain.alert_call import AlertRequest
from callrouter.domain.phone import national_digits
from callrouter.media import protocol as p
from callrouter.ports import MediaControl

BUSY_CODES = frozenset({486, 600, 603})
NO_ANSWER_CODES = frozenset({408, 480, 487})
TIER_PROMPTS = {"vital": "alert_tier_vital", "urgent": "alert_tier_urgent"}
DIGIT_PROMPTS = {d: f"digit_{d}" for d in "0123456789"}


AlertMedia = MediaControl  # the one media port, shared with calls and callback tasks


class LivePatients(Protocol):
    """What alerts need from the call controller (callrouter.controller.calls.CallController)."""

    def patient_worker(self, call_id: str) -> str | None: ...

    def patient_busy(self, call_id: str) -> bool: ...

    def connect_practitioner(self, call_id: str, worker: str, leg: str) -> bool: ...


@dataclass(frozen=True)
class AlertSettings:
    outbound_trunk: str                  # host:port: the practitioner is sip:<number>@trunk
    ring_timeout_s: float = 30.0
    digit_timeout_s: float = 6.0         # after each "tapez 1... tapez 2..."
    repeats: int = 3                     # how many times the message is said at most
    guard_s: float = 15.0                # after our own hang-up, how long to wait for the worker's word


class AlertState(enum.Enum):
    DIALING = "dialing"          # the practitioner's phone rings
    SPEAKING = "speaking"        # the message plays
    AWAITING = "awaiting"        # the message was said: waiting for a key
    CLOSING = "closing"          # a last sentence, then we hang up
    CALLING_PATIENT = "calling_patient"  # 2 pressed, patient gone: calling the patient back
    CONNECTED = "connected"      # practitioner and patient (called back) bridged
    ENDED = "ended"


@dataclass(eq=False)
class Alert:
    """One alert call. `player` plays on the practitioner's leg (moved with it on a redial);
    `timers` are closed when the alert ends, so a late timeout never acts on it."""

    request: AlertRequest
    worker: str
    leg: str
    acknowledge: Callable[[str], None]
    result: "defer.Deferred[str]"
    player: PromptPlayer
    timers: SessionTimers
    state: AlertState = AlertState.DIALING
    said: int = 0
    patient_leg: str | None = None
    outcome: str | None = None
    end_code: int | None = None
    redialled: bool = False


def message_prompts(request: AlertRequest) -> list[str | tuple[str]]:
    """What the practitioner hears, in order: prompt names, and `(path,)` for the practice name."""
    out: list[str | tuple[str]] = ["alert_intro"]
    if request.practice_prompt:
        out.append((request.practice_prompt,))
    out.append(TIER_PROMPTS.get(request.tier, "alert_tier_other"))
    digits = national_digits(request.caller)
    if digits:
        out.append("alert_callback_number")
        out += [DIGIT_PROMPTS[d] for d in digits]
    else:
        out.append("alert_number_hidden")
    out.append("alert_menu")
    return out


def dial_command(leg: str, number: str, request: AlertRequest, settings: AlertSettings) -> p.Dial:
    """The Dial for one leg of the alert (the practitioner, or the patient called back): through
    the outbound trunk, shown as the practice, tagged with the alert's key."""
    return p.Dial(leg, f"sip:{number}@{settings.outbound_trunk}",
                  display_name=p.display_name(request.practice_name),
                  headers={"X-Callrouter-Alert": request.key},
                  timeout_seconds=min(600.0, settings.ring_timeout_s + 5))
