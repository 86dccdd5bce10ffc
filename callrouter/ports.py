"""The small interfaces the controller and the admin API need from adapters.

Adapters implement them; tests use fakes implementing the same Protocol. Every store method is
blocking, runs one short transaction and takes the time as an argument (the controller owns the
clock), so the controller calls it through `twisted.internet.threads.deferToThreadPool`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from callrouter.auth.permissions import UserAttrs

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

# Outcomes a closed call record can carry.
# "announced": the caller got a message only (closed, dial 15) and the call ended.
# "rejected": refused unanswered with a SIP code (a number no dialplan has: 404), so never billed.
OUTCOMES = ("answered", "abandoned", "voicemail", "overflow", "callback_requested", "announced",
            "failed", "rejected")
# The parties a call is made of.
LEG_KINDS = ("caller", "worker", "secretary", "on_call")


@runtime_checkable
class CallStore(Protocol):
    """Crash-safe call records: opened at arrival, updated as the call goes, closed at the end.

    A crash leaves a record open; `close_orphans` (at start-up) and `close_worker_calls` (when a
    media worker dies) close them with their cause so no call is silently lost.
    """

    def open_call(self, call_id: str, practice: str, number: str, caller: str | None,
                  now: dt.datetime, worker: str | None = None) -> None: ...

    def ivr_answered(self, call_id: str, now: dt.datetime) -> None: ...

    def add_ivr_answer(self, call_id: str, menu: str, digit: str, now: dt.datetime) -> None: ...

    def set_route(self, call_id: str, route: str, reason: str, now: dt.datetime,
                  dialplan_version: str | None = None, why: Sequence[str] = ()) -> None: ...

    def queued(self, call_id: str, queue: str, now: dt.datetime) -> None: ...

    def offered(self, call_id: str, secretary: str, now: dt.datetime) -> None: ...

    def answered(self, call_id: str, secretary: str, now: dt.datetime) -> None: ...

    def add_leg(self, call_id: str, kind: str, party: str | None, now: dt.datetime) -> int: ...

    def end_leg(self, leg_id: int, cause: str, now: dt.datetime) -> None: ...

    def close_call(self, call_id: str, outcome: str, now: dt.datetime,
                   cause: str | None = None) -> bool: ...

    def close_worker_calls(self, worker: str, cause: str, now: dt.datetime) -> list[str]: ...

    def close_orphans(self, cause: str, now: dt.datetime) -> list[str]: ...


@dataclass(frozen=True)
class DialplanStatus:
    """What the admin API shows about one practice's dialplan."""

    practice: str
    version: str | None
    source: str
    loaded_at: dt.datetime | None
    last_error: str | None = None


@runtime_checkable
class DialplanStatusSource(Protocol):
    """Implemented by the dialplan registry; read by GET /api/dialplans/status.

    Called from the API's thread pool, not the reactor thread: return a snapshot (a new dict of
    frozen values), never a live structure the reactor may be changing.
    """

    def dialplan_status(self) -> Mapping[str, DialplanStatus]: ...


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where (an IP address, "cli", "scheduler"...): what the audit trail keeps."""

    name: str
    source: str


@dataclass(frozen=True)
class UserView:
    """A console/API user as the store returns it and the API checks permissions against."""

    id: int
    username: str
    display_name: str
    role: str
    external: bool
    enabled: bool
    practices: tuple[str, ...]
    grants: tuple[str, ...]
    has_sip_credential: bool
    created_at: dt.datetime
    disabled_at: dt.datetime | None

    @property
    def attrs(self) -> UserAttrs:
        return UserAttrs(enabled=self.enabled, external=self.external,
                         grants=frozenset(tuple(g.split(":", 1)) for g in self.grants),
                         practices=frozenset(self.practices))

    def to_json(self) -> dict:
        return {
            "username": self.username, "display_name": self.display_name, "role": self.role,
            "external": self.external, "enabled": self.enabled, "practices": list(self.practices),
            "grants": list(self.grants), "has_sip_credential": self.has_sip_credential,
            "created_at": self.created_at.isoformat(),
            "disabled_at": None if self.disabled_at is None else self.disabled_at.isoformat(),
        }


@dataclass(frozen=True)
class NewUser:
    """A user just created, with her TOTP secret: shown once, never again."""

    user: UserView
    totp_secret: str
    totp_uri: str


@dataclass(frozen=True)
class CallQuery:
    """Filters for reading call records; `practices=None` means every practice."""

    practices: frozenset[str] | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    outcome: str | None = None
    limit: int = 100


# Runs fn(*args) off the reactor thread (deferToThreadPool in the daemon, `defer.maybeDeferred` in
# tests) and returns a Deferred of its result: how services call the blocking store.
RunBlocking = Callable[..., "Deferred[Any]"]


class Clock(Protocol):
    """Anything with `seconds()`, e.g. the reactor or twisted.internet.task.Clock."""

    def seconds(self) -> float: ...


def utc_from_clock(clock: Clock) -> dt.datetime:
    """The clock's time as an aware UTC datetime (the only conversion adapters should need)."""
    return dt.datetime.fromtimestamp(clock.seconds(), dt.timezone.utc)


__all__: Sequence[str] = (
    "OUTCOMES", "LEG_KINDS", "CallStore", "DialplanStatus", "DialplanStatusSource", "Actor", "UserView",
    "NewUser", "CallQuery", "RunBlocking", "Clock", "utc_from_clock",
)
