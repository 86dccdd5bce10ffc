"""One callback task while the callback desk holds it (callrouter.controller.callbacks), and the
store it is written to (`TaskStore`, implemented by callrouter.store.tasks)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from callrouter.controller.player import PromptPlayer, SessionTimers
from callrouter.domain.model import Dialplan
from callrouter.domain.serving import Secretary, Waiting


class TaskStore(Protocol):
    """What the controller needs of the callback-task store (callrouter.store.tasks); blocking,
    called on the recorder's thread."""

    def create(self, practice: str, number: str, source: str, now: dt.datetime, expires_at: dt.datetime,
               **fields: Any) -> Any: ...
    def start_attempt(self, task_id: str, who: str, leg: str, now: dt.datetime) -> Any: ...
    def attempt_failed(self, task_id: str, now: dt.datetime) -> Any: ...
    def done(self, task_id: str, call_id: str | None, leg: str, now: dt.datetime) -> Any: ...
    def expire_due(self, now: dt.datetime) -> Any: ...


@dataclass(eq=False)
class TaskSession:
    """A callback task while the controller holds it (in line, ringing, calling the patient)."""

    task_id: str
    dialplan: Dialplan
    queue: str
    number: str  # E.164
    call_id: str | None  # the call it came from
    expires_at: dt.datetime
    timers: SessionTimers
    player: PromptPlayer  # on the secretary's leg (moved to each new one)
    patient_player: PromptPlayer  # on the patient's leg (moved to each new one)
    attempts: int = 0
    state: str = "queued"  # queued | ringing | calling | confirming | bridged | waiting_retry | ended
    worker: str | None = None
    secretary: Secretary | None = None
    secretary_leg: str | None = None
    patient_leg: str | None = None
    waiting: Waiting | None = None
    tried: set[str] = field(default_factory=set)

    @property
    def practice(self) -> str:
        return self.dialplan.practice
