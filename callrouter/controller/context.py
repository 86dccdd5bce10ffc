"""What every part of the call side is given: the clock, the media plane, the call record, the
prompts, the settings, the metrics and the events, in one frozen value built once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Sequence
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
