"""The media plane both ways: each leg's events to the session that owns it, commands out.

`LegRouter` is the worker pool's observer (`media_event`, `leg_lost`). An incoming call goes to the
one handler that takes new calls (the call controller, `take_calls`); every other event goes to the
owner of its leg: a call (its caller's leg, the secretaries' legs ringing for it, a forward), a
callback task (the secretary's and the patient's legs) or an alert call (the practitioner's, a
patient called back). An owner keeps its legs in an `OwnedLegs` mapping the router gives it
(`owned_by(owner)`): setting a leg registers it, removing it unregisters it. A leg registered by
another owner changes hands (a practitioner's alert leg bridged with the patient's call belongs to
the call from then on); the previous owner removing it later leaves the new owner's registration.
An event of a leg nobody owns is dropped, a worker's Error logged.

`send_command` is how calls and callback tasks send: a command to a leg or a worker that is gone is
dropped with a log line, since a call's end races its legs' ends (the alert calls, which must know
when a dial is refused, call the MediaControl port themselves).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterator, MutableMapping, Protocol, TypeVar

from callrouter.media import protocol as p
from callrouter.ports import MediaControl

logger = logging.getLogger(__name__)

V = TypeVar("V")


class LegOwner(Protocol):
    """A session holder the router hands its legs' events to."""

    def handle(self, worker: str, event: Any) -> Any: ...

    def leg_lost(self, worker: str, leg: str, cause: str) -> Any:
        """The leg vanished with its worker: no LegEnded will come."""


class OwnedLegs(MutableMapping[str, V]):
    """One owner's legs (leg -> its session); every change is told to the router."""

    def __init__(self, router: "LegRouter", owner: LegOwner) -> None:
        self._router, self.owner = router, owner
        self._items: dict[str, V] = {}

    def __getitem__(self, leg: str) -> V:
        return self._items[leg]

    def __setitem__(self, leg: str, value: V) -> None:
        self._items[leg] = value
        self._router._owners[leg] = self

    def __delitem__(self, leg: str) -> None:
        del self._items[leg]
        if self._router._owners.get(leg) is self:
            del self._router._owners[leg]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class LegRouter:
    """The media pool's observer: new calls to the call controller, each leg's events to its owner."""

    def __init__(self) -> None:
        self._owners: dict[str, OwnedLegs[Any]] = {}
        self._incoming: Callable[[str, p.IncomingCall], None] | None = None
        self._reports: Callable[[str, Any], None] | None = None

    def owned_by(self, owner: LegOwner) -> OwnedLegs[Any]:
        return OwnedLegs(self, owner)

    def take_reports(self, handler: Callable[[str, Any], None]) -> None:
        """`handler(worker, event)` gets the leg reports of the workers a new controller took over
        (`leg_report`, `legs_reported`): the re-adoption (controller/readopt.py)."""
        self._reports = handler

    def take_calls(self, handler: Callable[[str, p.IncomingCall], None]) -> None:
        """`handler(worker, event)` gets every incoming call (there is one: the call controller)."""
        self._incoming = handler

    def owner_of(self, leg: str) -> LegOwner | None:
        legs = self._owners.get(leg)
        return legs.owner if legs is not None else None

    # --- the pool's observer interface (callrouter.media.pool.MediaObserver) ---------------------

    def media_event(self, worker: str, event: Any) -> None:
        if isinstance(event, p.Ready):
            return
        if isinstance(event, p.IncomingCall):
            if self._incoming is not None:
                self._incoming(worker, event)
            return
        if isinstance(event, (p.LegReport, p.LegsReported)):
            if self._reports is not None:
                self._reports(worker, event)
            return
        owner = self.owner_of(getattr(event, "leg", "") or "")
        if owner is not None:
            owner.handle(worker, event)
        elif isinstance(event, p.Error):
            logger.warning("worker %s reports: %s (%s)", worker, event.message, event.command)

    def leg_lost(self, worker: str, leg: str, cause: str) -> None:
        owner = self.owner_of(leg)
        if owner is not None:
            owner.leg_lost(worker, leg, cause)


def send_command(media: MediaControl, worker: str | None, command: Any) -> None:
    """A Dial goes to `worker`, any other command to the worker holding its leg; one the plane
    cannot take (leg or worker gone, command refused) is dropped with a log line."""
    try:
        if isinstance(command, p.Dial):
            media.dial(worker, command)
        else:
            media.send(command)
    except (LookupError, ValueError) as exc:
        logger.info("media command %s not sent: %s", command.type, exc)
