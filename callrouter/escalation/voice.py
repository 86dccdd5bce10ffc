"""The voice channel: a `call` step of an escalation chain is a phone call to the practitioner.

`VoiceChannel.send()` places the call through the controller's alert calls (an `AlertPlacer`,
callrouter.escalation.ports, implemented by callrouter.controller.alerts and given by
callrouter.app) and fires once its outcome is known: as soon as a key is pressed, or
when the call ends unanswered or without a key. The provider id it returns names the outcome
(`esc-7-0-1/no_answer`) and is stored as the step's `outcome`. A call where a key was pressed is
`delivered`; every other one, including a call answered without a key (`no_key_pressed`: a
voicemail answers like a person), is only `sent`. Either way the step's wait then applies and the
chain goes on: only a key acknowledges. A call that cannot be placed at all is a ChannelError (next step at once).

Pressing 1 or 2 records the acknowledgement through the store, as the link, SMS and console ways
do, with via "call" and the step's practitioner as who; the outcome is reported only once it is
stored, carrying the accepted acknowledgement (`ProviderId.acknowledged`) for the engine to stop
the chain.

The practice's name is said from a WAV made at run time with espeak-ng into var/prompts/<practice>/
(named by a hash of the text, so a renamed practice gets a new file at its next alert): the name
comes from the dialplan in force, which a reload may change at any moment, and `prompts build` runs
from the repository's dialplans only. A recording (prompts/recorded/[<practice>/]practice_name.wav)
or a dialplan text `practice_name` built by `prompts build` wins when present.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from twisted.internet import defer

from callrouter.domain.alert_call import PERSON_REACHED, AlertNotPlaced, AlertRequest
from callrouter.domain.call import mask_number
from callrouter.domain.escalation_views import EscalationView
from callrouter.escalation.messages import Message
from callrouter.escalation.ports import AckStore, AlertPlacer, ChannelError, ProviderId
from callrouter.ports import RunBlocking, utc_from_clock

logger = logging.getLogger(__name__)

PRACTICE_NAME_PROMPT = "practice_name"


@dataclass(frozen=True)
class CallMessage(Message):
    """A `call` step's message: what the call says and what pressing a key acts on."""

    escalation_id: int = 0
    practitioner: str | None = None
    practice: str = ""
    practice_name: str = ""
    tier: str = ""
    caller: str | None = None
    call_id: str | None = None


def call_message(base: Message, escalation_id: int, practitioner: str | None, practice: str,
                 practice_name: str, tier: str, caller: str | None, call_id: str | None) -> CallMessage:
    return CallMessage(**dataclasses.asdict(base), escalation_id=escalation_id, practitioner=practitioner,
                       practice=practice, practice_name=practice_name, tier=tier, caller=caller,
                       call_id=call_id)


class PracticeNames:
    """The WAV saying a practice's name: a recording or built prompt if any, else spoken now."""

    def __init__(self, directory: Path, existing: Callable[[str], Path | None], run_blocking: RunBlocking,
                 speak: Callable[[str, Path], None] | None = None) -> None:
        self._dir = Path(directory)
        self._existing = existing
        self._run = run_blocking
        if speak is None:
            from callrouter.prompts import speak  # espeak-ng + sox, as `prompts build` uses
        self._speak = speak

    def path_for(self, practice: str, name: str) -> "defer.Deferred[str | None]":
        """Fires with the WAV's path, or None (the name is then not said) when it cannot be made."""
        found = self._existing(practice)
        if found is not None:
            return defer.succeed(str(found))
        if not name.strip() or not practice or "/" in practice or practice.startswith("."):
            return defer.succeed(None)
        digest = hashlib.sha256(" ".join(name.split()).encode("utf-8")).hexdigest()[:12]
        target = self._dir / practice / f"{PRACTICE_NAME_PROMPT}-{digest}.wav"
        if target.exists():
            return defer.succeed(str(target))

        def made(_):
            return str(target)

        def failed(failure):
            logger.error("cannot say the name of practice %s in alert calls: %s", practice,
                         failure.getErrorMessage())
            return None

        return self._run(self._speak, name, target).addCallbacks(made, failed)


class VoiceChannel:
    """The `call` channel: alert calls placed through `alerts` (None: no media plane, every call
    step fails at once), a key pressed recorded through `store`."""

    def __init__(self, clock: Any, run_blocking: RunBlocking, alerts: AlertPlacer | None, store: AckStore,
                 names: PracticeNames | None = None) -> None:
        self._clock = clock
        self._run = run_blocking
        self._alerts = alerts
        self._store = store
        self._names = names
        self._calls: dict[int, str] = {}  # escalation id -> key of its alert call under way

    def send(self, message: Message) -> "defer.Deferred[str | None]":
        if not isinstance(message, CallMessage):
            return defer.fail(ChannelError("the voice channel needs a call message"))
        if self._alerts is None:
            return defer.fail(ChannelError("no media plane for alert calls"))
        if self._names is not None:
            d = self._names.path_for(message.practice, message.practice_name)
        else:
            d = defer.succeed(None)
        d.addCallback(lambda path: self._place(message, path))
        return d

    def _place(self, m: CallMessage, practice_prompt: str | None) -> "defer.Deferred[str | None]":
        request = AlertRequest(key=m.key, destination=m.to, practice=m.practice, practice_name=m.practice_name,
                               tier=m.tier, caller=m.caller, call_id=m.call_id, practice_prompt=practice_prompt)
        recording: list[defer.Deferred] = []  # the acknowledgement being stored, once a key is pressed
        d = self._alerts.place(request, lambda digit: recording.append(self._acknowledge(m, digit)))
        self._calls[m.escalation_id] = m.key

        def over(result: Any) -> Any:
            if self._calls.get(m.escalation_id) == m.key:
                del self._calls[m.escalation_id]
            return result

        d.addBoth(over)

        def outcome(result: str) -> Any:
            provider_id = f"{m.key}/{result}"
            delivered = result in PERSON_REACHED
            if recording:  # the engine reads the chain next: the acknowledgement must be stored first
                return recording[0].addCallback(
                    lambda accepted: ProviderId(provider_id, result, delivered, acknowledged=accepted))
            return ProviderId(provider_id, result, delivered)

        def not_placed(failure):
            failure.trap(AlertNotPlaced)
            raise ChannelError(f"call not placed: {failure.getErrorMessage()}")

        return d.addCallbacks(outcome, not_placed)

    def chain_stopped(self, escalation_id: int) -> None:
        """Told by the engine that a chain was acknowledged: its alert call, if one is under way,
        stops (a practitioner is not called about a case someone already took)."""
        key = self._calls.get(escalation_id)
        if key is not None and self._alerts is not None:
            self._alerts.cancel(key)

    def _acknowledge(self, m: CallMessage, digit: str) -> "defer.Deferred[EscalationView | None]":
        """The practitioner pressed 1 or 2: recorded in the store. Fires once stored with the chain
        if the store accepted it (None: acknowledged before, or its failure logged)."""
        d = self._run(self._store.acknowledge, m.escalation_id, m.practitioner, "call", utc_from_clock(self._clock))

        def recorded(result) -> EscalationView | None:
            if result.accepted:
                return result.escalation
            logger.info("escalation %s: acknowledged by call from %s, but it was already acknowledged",
                        m.escalation_id, mask_number(m.to))
            return None

        def failed(failure) -> None:
            logger.error("escalation %s: the acknowledgement by call could not be recorded: %s",
                         m.escalation_id, failure.getErrorMessage())

        return d.addCallbacks(recorded, failed)
