"""One call while the controller holds it: its state, what it was decided, who it rings or talks to.

The state machine that moves it is the call controller's table `_HANDLERS[(state, event type)]`
(callrouter.controller.calls); the queue and its offers (callrouter.controller.offers) and the
IVR, voicemail, callback-number dialogue and forward (callrouter.controller.flow) act on it. Its
prompts go through its `player` and its timeouts through its `timers` (callrouter.controller.player),
closed when the call ends, so a late timeout never acts on an ended call.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from callrouter.controller.player import PromptPlayer, SessionTimers
from callrouter.domain import callback_dialogue, ivr
from callrouter.domain.call import Call
from callrouter.domain.decision import Decision
from callrouter.domain.model import Dialplan, IvrAction
from callrouter.domain.serving import Secretary, Waiting


class State(enum.Enum):
    ANNOUNCE = "announce"
    IVR = "ivr"
    QUEUED = "queued"
    RINGING = "ringing"  # a secretary's phone rings, the caller hears ringback
    BRIDGED = "bridged"
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"  # offered a callback: 1 accepts
    CALLBACK_NUMBER = "callback_number"  # typing the number to call back, then #
    CALLBACK_CONFIRM = "callback_confirm"  # number read back: 1 confirms, 2 types another
    FORWARDING = "forwarding"
    ENDED = "ended"


# While in these states the caller talks to nobody: an alert call may connect her to a practitioner.
CONNECTABLE = frozenset({State.ANNOUNCE, State.IVR, State.QUEUED, State.CALLBACK, State.RINGING})


@dataclass(eq=False)
class CallSession:
    call_id: str
    worker: str
    leg: str
    dialplan: Dialplan | None
    call: Call
    player: PromptPlayer
    timers: SessionTimers
    state: State = State.ANNOUNCE
    decision: Decision | None = None
    menu: ivr.MenuState | None = None
    waiting: Waiting | None = None
    secretary: Secretary | None = None
    other_leg: str | None = None  # the secretary's (once answered) or the forward's leg
    offers: dict[str, Secretary] = field(default_factory=dict)  # legs ringing secretaries -> who
    tried: set[str] = field(default_factory=set)
    overflowed: bool = False
    tier_started: str | None = None
    bridged_at: float | None = None
    ivr_answers: list[tuple[str, str]] = field(default_factory=list)
    menu_ahead: IvrAction | None = None  # the menu an announcement leads to (digits may skip ahead)
    recording_started: dt.datetime | None = None
    call_started: dt.datetime | None = None
    outcome: str | None = None  # outcome to close with when the caller leg ends
    queue_name: str | None = None  # the queue the call was sent to (a callback task waits there)
    dialogue: callback_dialogue.State | None = None  # the callback-number dialogue, once offered

    @property
    def practice(self) -> str:
        return self.dialplan.practice if self.dialplan else ""

    @property
    def legs(self) -> list[str]:
        """The legs besides the caller's: those ringing secretaries, and the one she talks to."""
        return [*self.offers, *([self.other_leg] if self.other_leg else [])]
