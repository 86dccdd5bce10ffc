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
from callrouter.domain.serving import Secretary
from callrouter.domain.team import Team

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

# Outcomes a closed call record can carry.
# "announced": the caller got a message only (closed, dial 15) and the call ended.
# "rejected": refused unanswered with a SIP code (a number no dialplan has: 404), so never billed.
OUTCOMES = ("answered", "abandoned", "voicemail", "overflow", "callback_requested", "announced",
            "failed", "rejected")
# The parties a call is made of.
LEG_KINDS = ("caller", "worker", "secretary", "on_call", "transfer")  # transfer: a colleague taking over the call


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

    def close_orphans(self, cause: str, now: dt.datetime, keep: tuple[str, ...] = ()) -> list[str]: ...

    def set_caller_leg(self, call_id: str, leg: str) -> None:
        """The worker's leg of the caller, by which a controller started again re-adopts the call."""


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


class MediaControl(Protocol):
    """The media plane as calls, callback tasks and alert calls drive it (implemented by
    callrouter.media.pool.MediaPool). Commands are callrouter.media.protocol values. Both `dial`
    and `send` raise LookupError when the worker or the leg is gone, ValueError for a command the
    worker would refuse."""

    def pick(self, legs: int = 1) -> str | None:
        """A worker with room for `legs` more legs, for calls we place ourselves (None: none has)."""

    def dial(self, worker: str, command: Any) -> None:
        """Place a new leg (a `Dial`) on `worker`."""

    def send(self, command: Any) -> None:
        """Send a command to the worker holding its leg."""


class UnknownSecretary(LookupError):
    """No secretary or phone by that name in any queue."""


class SecretaryStateError(ValueError):
    """A change of state that does not apply (e.g. logging out a fixed phone)."""


class UnknownPauseReason(SecretaryStateError):
    """A pause whose reason is not one of the team's pause reasons (`reasons`)."""

    def __init__(self, reason: str, reasons: Sequence[str]) -> None:
        self.reason, self.reasons = reason, tuple(reasons)
        super().__init__(f"unknown pause reason {reason!r}")


class SecretaryDesk(Protocol):
    """The secretaries' live states: logins, pauses, softphone registrations, offers ringing and
    missed, calls answered today (implemented in memory by callrouter.controller.desk.Desk; a
    console or a store shared by several nodes are other implementations). Runs on the reactor
    thread. A secretary is named by her username or her phone's URI; an unknown name raises
    UnknownSecretary, a change that does not apply SecretaryStateError. `by` names who makes a
    change (a user's name, or "system:<cause>"; None: the secretary herself): her state history
    and the published state carry it."""

    # --- the team, as the API and the console see it ---------------------------------------------
    def known(self, who: str) -> bool: ...
    def views(self) -> list[dict[str, Any]]: ...
    def view(self, who: str) -> dict[str, Any]: ...
    def current_offer(self, who: str) -> dict[str, Any] | None:
        """The screen-pop of the call ringing her or that she is on (None when none)."""
    def login(self, who: str, by: str | None = None) -> dict[str, Any]: ...
    def logout(self, who: str, by: str | None = None) -> dict[str, Any]: ...
    def pause(self, who: str, reason: str | None = None, by: str | None = None) -> dict[str, Any]:
        """With one of the team's pause reasons (None: its first); another raises UnknownPauseReason."""
    def resume(self, who: str, by: str | None = None) -> dict[str, Any]: ...
    def apply_team(self, team: Team) -> bool:
        """Dispatch follows `team` (coverage, levels, pause reasons) from now on, every secretary's
        state kept; False for a team not newer than the one applied; ValueError, changing nothing,
        for an entry it cannot use."""
    def registrations_changed(self, usernames: frozenset[str]) -> None:
        """The usernames registered at the edge now: only their softphones are offered calls."""

    # --- the call side: offers ringing, answered, missed ---------------------------------------------
    def secretary(self, who: str) -> Secretary: ...
    def when_available(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever a secretary may take a call again (logged in, resumed, softphone
        back, wrap-up over): waiting calls are offered then."""
    def ringing(self, secretary: Secretary, pop: Mapping[str, Any]) -> None:
        """Her phone is about to ring for an offer: her screen-pop is built and published first."""
    def answered(self, secretary: Secretary, call_id: str) -> None: ...
    def missed(self, secretary: Secretary) -> None:
        """An offer that was hers to take rang out, was busy or declined."""
    def free(self, secretary: Secretary | None, wrap_up: float) -> None:
        """Her call or offer is over: idle again, after `wrap_up` seconds of wrap-up."""
    def seed_answer(self, who: str, call_id: str, at: dt.datetime) -> None:
        """A call she answered before a restart (from the call records), for her calls today."""


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
    "NewUser", "CallQuery", "MediaControl", "UnknownSecretary", "SecretaryStateError", "UnknownPauseReason",
    "SecretaryDesk", "RunBlocking", "Clock", "utc_from_clock",
)
