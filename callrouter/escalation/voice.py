"""The voice channel: a `call` step of an escalation chain is a phone call to the practitioner.

`VoiceChannel.send()` places the call through the controller's alert calls
(callrouter.controller.alerts) and fires once its outcome is known: as soon as a key is pressed, or
when the call ends unanswered or without a key. The provider id it returns names the outcome
(`esc-7-0-1/no_answer`) and is stored as the step's `outcome`. A call where a key was pressed is
`delivered`; every other one, including a call answered without a key (`no_key_pressed`: a
voicemail answers like a person), is only `sent`. Either way the step's wait then applies and the
chain goes on: only a key acknowledges. A call that cannot be placed at all is a ChannelError (next step at once).

Pressing 1 or 2 records the acknowledgement through the store, as the link, SMS and console ways
do, with via "call" and the step's practitioner as who; the engine is then told to stop.

The practice's name is said from a WAV made at run time with espeak-ng into var/prompts/<practice>/
(named by a hash of the text, so a renamed practice gets a new file at its next alert): the name
comes from the dialplan in force, which a reload may change at any moment, and `prompts build` runs
from the repository's dialplans only. A recording (prompts/recorded/[<practice>/]practice_name.wav)
or a dialplan text `practice_name` built by `prompts build` wins when present.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from twisted.internet import defer

from callrouter.controller.alerts import PERSON_REACHED, AlertNotPlaced, AlertRequest
from callrouter.domain.call import mask_number
from callrouter.escalation.channels import ChannelError, ProviderId
from callrouter.escalation.messages import Message

logger = logging.getLogger(__name__)

PRACTICE_NAME_PROMPT = "practice_name"
RunBlocking = Callable[..., "defer.Deferred[Any]"]


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


class AlertPlacer(Protocol):
    """callrouter.controller.alerts.AlertCalls"""

    def place(self, request: AlertRequest, acknowledge: Callable[[str], None]) -> "defer.Deferred[str]": ...


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
    """The `call` channel. `alerts` is set once the media plane exists (see callrouter.app);
    `bind()` gives it the store path acknowledgements take."""

    def __init__(self, clock: Any, run_blocking: RunBlocking, names: PracticeNames | None = None) -> None:
        self._clock = clock
        self._run = run_blocking
        self._names = names
        self.alerts: AlertPlacer | None = None
        self._repo: Any = None
        self._notify: Callable[[Any], None] = lambda view: None
        self._calls: dict[int, str] = {}  # escalation id -> key of its alert call under way

    def bind(self, repo: Any, notify: Callable[[Any], None]) -> None:
        """`repo`: the EscalationRepository; `notify(view)`: the engine's `acknowledged`."""
        self._repo, self._notify = repo, notify

    def send(self, message: Message) -> "defer.Deferred[str | None]":
        if not isinstance(message, CallMessage):
            return defer.fail(ChannelError("the voice channel needs a call message"))
        if self.alerts is None:
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
        d = self.alerts.place(request, lambda digit: recording.append(self._acknowledge(m, digit)))
        self._calls[m.escalation_id] = m.key

        def over(result: Any) -> Any:
            if self._calls.get(m.escalation_id) == m.key:
                del self._calls[m.escalation_id]
            return result

        d.addBoth(over)

        def outcome(result: str) -> Any:
            provider_id = f"{m.key}/{result}"
            sent = ProviderId(provider_id, result, delivered=result in PERSON_REACHED)
            if recording:  # the engine reads the chain next: the acknowledgement must be stored first
                return recording[0].addCallback(lambda _: sent)
            return sent

        def not_placed(failure):
            failure.trap(AlertNotPlaced)
            raise ChannelError(f"call not placed: {failure.getErrorMessage()}")

        return d.addCallbacks(outcome, not_placed)

    def chain_stopped(self, escalation_id: int) -> None:
        """Told by the engine that a chain was acknowledged: its alert call, if one is under way,
        stops (a practitioner is not called about a case someone already took)."""
        key = self._calls.get(escalation_id)
        cancel = getattr(self.alerts, "cancel", None)
        if key is not None and cancel is not None:
            cancel(key)

    def _acknowledge(self, m: CallMessage, digit: str) -> "defer.Deferred[None]":
        """The practitioner pressed 1 or 2: recorded in the store, then the chain stops. Fires once
        stored (or its failure logged)."""
        if self._repo is None:
            logger.error("escalation %s: key %s pressed but acknowledgements are not wired", m.escalation_id, digit)
            return defer.succeed(None)
        now = dt.datetime.fromtimestamp(self._clock.seconds(), dt.timezone.utc)
        d = self._run(self._repo.acknowledge, m.escalation_id, m.practitioner, "call", now)

        def recorded(result) -> None:
            if result.accepted:
                self._notify(result.escalation)
            else:
                logger.info("escalation %s: acknowledged by call from %s, but it was already acknowledged",
                            m.escalation_id, mask_number(m.to))

        def failed(failure) -> None:
            logger.error("escalation %s: the acknowledgement by call could not be recorded: %s",
                         m.escalation_id, failure.getErrorMessage())

        return d.addCallbacks(recorded, failed)


# --- wiring (callrouter.app) ---------------------------------------------------------------------


def build_voice(settings: Any, var_dir: Path, catalogue: Any, reactor: Any) -> VoiceChannel | None:
    """The voice channel when `escalation.voice_calls` is on (else None: `call` steps go as SMS)."""
    if not (settings.enabled and settings.voice_calls):
        return None

    def run_blocking(f, *args):
        from twisted.internet import threads

        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), f, *args)

    def existing(practice: str) -> Path | None:
        path = catalogue.wav_path(PRACTICE_NAME_PROMPT, practice)
        return path if path.exists() else None

    return VoiceChannel(reactor, run_blocking, PracticeNames(Path(var_dir) / "prompts", existing, run_blocking))


def attach_alerts(voice: VoiceChannel, settings: Any, outbound_trunk: str, reactor: Any, media: Any,
                  prompt_path: Callable[[str, str | None], str], patients: Any) -> Any:
    """The alert calls on the media pool, with the controller for live patients; returns them for
    the controller's hook (`controller.alerts`)."""
    from callrouter.controller.alerts import AlertCalls, AlertSettings

    alerts = AlertCalls(reactor, media, prompt_path,
                        AlertSettings(outbound_trunk, ring_timeout_s=settings.call_ring_timeout_seconds,
                                      digit_timeout_s=settings.call_digit_timeout_seconds,
                                      repeats=settings.call_repeats), patients)
    voice.alerts = alerts
    return alerts
