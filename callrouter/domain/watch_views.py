"""The forwarding watch's runs as the store answers with them (callrouter.store.watch), and the
refusals a new run may meet. Frozen values, no I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# A run's states: under way, then its verdict; interrupted when its node stopped during it.
CALLING, PASSED, FAILED, INTERRUPTED = "calling", "passed", "failed", "interrupted"
RUN_STATES = (CALLING, PASSED, FAILED, INTERRUPTED)
# An alert's states, as in the other outboxes: claimed before it is sent, never sent twice.
PENDING, SENDING, SENT, SEND_FAILED, UNKNOWN = "pending", "sending", "sent", "failed", "unknown"
ALERT_STATES = (PENDING, SENDING, SENT, SEND_FAILED, UNKNOWN)
SCHEDULE = "schedule"  # the trigger of a planned run (else: who asked for it)


class WatchRefused(Exception):
    """A run that may not start now; the message is French, for the person who asked."""


class UnknownRun(LookupError):
    pass


@dataclass(frozen=True)
class AttemptView:
    n: int
    started_at: dt.datetime
    ended_at: dt.datetime | None
    outcome: str | None
    sip_code: int | None
    rang: bool
    rtt_ms: int | None
    name_kept: bool | None


@dataclass(frozen=True)
class AlertView:
    id: int
    run_id: int
    channel: str
    destination: str
    state: str
    attempts: int
    sent_at: dt.datetime | None
    error: str | None


@dataclass(frozen=True)
class RunView:
    id: int
    slot_key: str
    practice: str
    number: str
    returns_on: str
    caller: str
    token: str
    trigger: str
    node: str
    state: str
    outcome: str | None
    rtt_ms: int | None
    planned_at: dt.datetime
    started_at: dt.datetime
    ended_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    attempts: tuple[AttemptView, ...] = ()
    alerts: tuple[AlertView, ...] = ()

    @property
    def alarm(self) -> bool:
        """Shown in red until someone acknowledges it."""
        return self.state == FAILED and self.acknowledged_at is None
