"""An alert call, as the escalation's voice channel asks for it and the call controller reports it.

The voice channel (callrouter.escalation.voice) places one per `call` step through the
controller's alert calls (callrouter.controller.alerts) and stores the outcome on the step; only a
key pressed proves that someone heard the alert (`PERSON_REACHED`).
"""

from __future__ import annotations

from dataclasses import dataclass

# What an alert call came to (the step's delivery outcome).
ACKNOWLEDGED = "acknowledged"        # 1 pressed
CONNECTED = "connected"              # 2 pressed: acknowledged, and connected to the patient
ANSWERED_NO_KEY = "no_key_pressed"  # answered (by a person or a voicemail), no key: not an ack
NO_ANSWER = "no_answer"
BUSY = "busy"
FAILED = "failed"                    # the trunk or the phone refused the call
CANCELLED = "cancelled"              # the chain was acknowledged another way meanwhile
ANSWERED = frozenset({ACKNOWLEDGED, CONNECTED, ANSWERED_NO_KEY})
# Outcomes that prove a person heard the alert: a key was pressed. A voicemail that recorded the
# message is not one (nor is a hang-up without a key).
PERSON_REACHED = frozenset({ACKNOWLEDGED, CONNECTED})


class AlertNotPlaced(Exception):
    """The call could not even be placed (no worker with room, the worker refused the dial)."""


@dataclass(frozen=True)
class AlertRequest:
    key: str                             # unique per (escalation, round, step): names the leg
    destination: str                     # the practitioner's number
    practice: str
    practice_name: str
    tier: str
    caller: str | None                   # the patient's number (callback), None when hidden
    call_id: str | None                  # the patient's call, to connect it while still live
    practice_prompt: str | None = None   # a WAV saying the practice's name (None: not said)
