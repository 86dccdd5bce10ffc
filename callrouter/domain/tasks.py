"""A callback task's states, its view and the refusals of its life, shared by the store (which
runs the transitions: callrouter.store.tasks), the controller and the API (which shows them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

OPEN, ASSIGNED, CALLING, DONE, EXPIRED, CANCELLED = (
    "open", "assigned", "calling", "done", "expired", "cancelled")
STATES = (OPEN, ASSIGNED, CALLING, DONE, EXPIRED, CANCELLED)
ACTIVE = (OPEN, ASSIGNED, CALLING)
WAITING = (OPEN, ASSIGNED)  # in line, waiting for someone to call


class UnknownTask(LookupError):
    pass


class TaskStateError(Exception):
    """A transition the task's state does not allow; the message says which and why."""

    def __init__(self, task_id: str, state: str, action: str, why: str = "") -> None:
        self.task_id, self.state, self.action = task_id, state, action
        super().__init__(f"cannot {action} task {task_id}: it is {state}{f' ({why})' if why else ''}")


@dataclass(frozen=True)
class TaskView:
    id: str
    practice: str
    queue: str | None
    number: str
    source: str
    call_id: str | None
    created_at: dt.datetime
    created_by: str | None
    place_at: dt.datetime
    expires_at: dt.datetime
    state: str
    assigned_to: str | None
    attempts: int
    attempt_leg: str | None
    last_attempt_at: dt.datetime | None
    done_at: dt.datetime | None
    done_call_id: str | None
    done_leg: str | None
    cancelled_by: str | None
    cancel_reason: str | None
    note: str | None
    updated_at: dt.datetime

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def to_json(self) -> dict:
        return {
            "id": self.id, "practice": self.practice, "queue": self.queue, "number": self.number,
            "source": self.source, "call_id": self.call_id, "created_at": self.created_at.isoformat(),
            "created_by": self.created_by, "place_at": self.place_at.isoformat(),
            "expires_at": self.expires_at.isoformat(), "state": self.state,
            "assigned_to": self.assigned_to, "attempts": self.attempts,
            "last_attempt_at": _iso(self.last_attempt_at), "done_at": _iso(self.done_at),
            "done_call_id": self.done_call_id, "done_leg": self.done_leg,
            "cancelled_by": self.cancelled_by, "cancel_reason": self.cancel_reason,
            "note": self.note, "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class TaskQuery:
    """Filters for listing tasks; `practices=None`/`states=None` mean all of them."""

    practices: frozenset[str] | None = None
    states: frozenset[str] | None = None
    limit: int = 100


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()
