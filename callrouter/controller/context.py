"""What every part of the call side is given: the clock, the media plane, the call record, the
prompts, the settings, the metrics and the events, in one frozen value built once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence
from zoneinfo import ZoneInfo

from callrouter.controller.legs import send_command
from callrouter.controller.settings import ControllerSettings
from callrouter.metrics import Metrics
from callrouter.ports import MediaControl, utc_from_clock

# The day a secretary's "calls today" counts over on her console (the secretariat works on French
# time), and the zone of a practice no dialplan describes any more.
LOCAL_DAY_ZONE = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class CallContext:
    reactor: Any  # timers and time (twisted.internet.task.Clock in tests)
    media: MediaControl
    recorder: Any  # callrouter.controller.recorder.CallRecorder: ordered, retried store writes
    prompt_path: Callable[[str, str | None], str]
    settings: ControllerSettings
    metrics: Metrics
    events: Any  # callrouter.events.notifier.EventNotifier, or NoEvents
    recordings: "CallRecordingHooks" = None  # type: ignore[assignment] # NoRecordings when None

    def __post_init__(self) -> None:
        if self.recordings is None:
            object.__setattr__(self, "recordings", NoRecordings())

    def apply(self, settings: ControllerSettings) -> None:
        """New settings from a reload (callrouter.live_settings): the one value of the context
        that changes while it runs. Every part reads `ctx.settings` when it acts, none keeps a
        copy, so the next offer, prompt or timer uses them."""
        object.__setattr__(self, "settings", settings)

    def now(self) -> dt.datetime:
        return utc_from_clock(self.reactor)

    def seconds(self) -> float:
        return self.reactor.seconds()

    def send(self, worker: str | None, command: Any) -> None:
        send_command(self.media, worker, command)

    def path(self, name: str, practice: str | None) -> str:
        return str(self.prompt_path(name, practice or None))

    def play(self, s: Any, names: Sequence[str], then: Callable[[], None] | None) -> None:
        """Play the prompts `names` (of its practice) on the caller's leg of `s`, then `then`."""
        s.player.play([self.path(n, s.practice) for n in names], then)

    def loop(self, s: Any, name: str) -> None:
        s.player.loop(self.path(name, s.practice))


class NoEvents:
    """Events off: every notification is dropped."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


class CallRecordingHooks(Protocol):
    """What the call side tells call recording (callrouter.recording.calls, docs/recording.md):
    before a call joins its queue (the consent message), each digit of its caller while she may
    refuse, its bridge with the secretary who answered, a voicemail message left, and its end."""

    def before_queue(self, s: Any, then: Callable[[], None]) -> None: ...

    def digit(self, s: Any, digit: str) -> bool:
        """True when the digit was the recording's (the refuse key, or any key while asked)."""

    def bridged(self, s: Any) -> None: ...

    def voicemail_left(self, s: Any, path: str, started_at: dt.datetime, duration: float,
                       task_id: str | None) -> bool:
        """True when the message is taken care of (sealed and stored): else the call record keeps it."""

    def ended(self, s: Any) -> None: ...


class NoRecordings:
    """No call recording: calls go straight to their queue; messages are stored as they were."""

    def before_queue(self, s: Any, then: Callable[[], None]) -> None:
        then()

    def digit(self, s: Any, digit: str) -> bool:
        return False

    def bridged(self, s: Any) -> None:
        return None

    def voicemail_left(self, s: Any, path: str, started_at: dt.datetime, duration: float,
                       task_id: str | None) -> bool:
        return False

    def ended(self, s: Any) -> None:
        return None
