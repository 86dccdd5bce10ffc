"""Watch calls on the media plane: one outgoing leg per attempt, and the call coming back.

An attempt dials the practice's number through the outbound trunk, as a patient would, presenting
a number of the secretariat's watch range (`From: "Test renvoi <token>" <sip:+33...@worker>`).
It is decided by the first of:
- a call arriving from that presented number on the number the practice's line is forwarded to
  (`returning`, called by the call controller for every new call before anything else): passed,
  with the time from our dial to its arrival;
- the practice's line answering (a person, a machine): answered, hung up at once;
- our leg ending (busy, declined, refused, not placed by the worker);
- the time limit: unanswered if it rang, no_return if not.

A call from the watch range is always released at once, before any answer (`release_code`, 603 by
default: nothing to bill, nothing queued, no call record), whether or not an attempt is waiting
for it: nobody but the watch calls from these numbers. Once an attempt is decided its own leg is
hung up; the number stays "under way" until that leg has ended (or `guard_s` passed), so a number
is never called twice at once.

Each attempt is a small state machine (`_HANDLERS[(state, event type)]`); timers go through
SessionTimers on the injected reactor (task.Clock in tests); commands through the MediaControl port.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, MutableMapping

from twisted.internet import defer

from callrouter.controller.legs import LegRouter
from callrouter.controller.player import SessionTimers
from callrouter.domain import watch
from callrouter.domain.call import mask_number
from callrouter.domain.watch import number_key
from callrouter.media import protocol as p
from callrouter.ports import MediaControl

logger = logging.getLogger(__name__)

LEG_PREFIX = "watch-"


@dataclass(frozen=True)
class CallSettings:
    outbound_trunk: str                  # host:port: the practice's line is sip:<number>@trunk
    callers: tuple[str, ...]             # the watch range: the numbers presented, recognised back
    display_name: str = "Test renvoi"
    release_code: int = 603
    guard_s: float = watch.GUARD_S


@dataclass(frozen=True)
class AttemptRequest:
    key: str            # unique: names the leg (watch-<key>)
    practice: str
    call: str           # the number dialled
    returns_on: str     # the number the forwarded call arrives on
    caller: str         # the watch range's number presented
    token: str          # shown after the display name
    timeout_s: float


@dataclass(frozen=True)
class AttemptResult:
    outcome: str                     # callrouter.domain.watch OUTCOMES
    rtt_s: float | None = None       # dial to the call back (passed only)
    sip_code: int | None = None
    rang: bool = False
    name_kept: bool | None = None    # the call back carried the token in its display name


class State(enum.Enum):
    DIALING = "dialing"
    RINGING = "ringing"
    DECIDED = "decided"   # the verdict is given; our leg is being hung up
    ENDED = "ended"


@dataclass(eq=False)
class Attempt:
    request: AttemptRequest
    worker: str
    leg: str
    dialled_at: float
    result: "defer.Deferred[AttemptResult]"
    timers: SessionTimers
    state: State = State.DIALING
    rang: bool = False
    outcome: AttemptResult | None = field(default=None)


class WatchCalls:
    """Places watch attempts and recognises their return; gets the events of the legs it dialled."""

    def __init__(self, reactor: Any, media: MediaControl, settings: CallSettings,
                 legs: LegRouter | None = None, elsewhere: Callable[[str, str, str], Any] | None = None) -> None:
        """`elsewhere(caller, number, caller_name)`: told of a call back no attempt here waits for
        (the store writes it for the node that placed the call, callrouter.watch.build)."""
        self._reactor, self._media, self.settings = reactor, media, settings
        self._elsewhere = elsewhere or (lambda caller, number, name: None)
        self._attempts: MutableMapping[str, Attempt] = legs.owned_by(self) if legs else {}
        self._callers = frozenset(number_key(n) for n in settings.callers)

    # --- placing -----------------------------------------------------------------------------------

    def place(self, request: AttemptRequest) -> "defer.Deferred[AttemptResult]":
        """Dial; fires with the attempt's result as soon as it is decided (never fails)."""
        leg = LEG_PREFIX + request.key
        if leg in self._attempts or request.call in self.numbers_under_way():
            return defer.succeed(AttemptResult(watch.NOT_PLACED))
        worker = self._media.pick(1)
        if worker is None:
            logger.warning("watch %s: no media worker has room for the call", request.key)
            return defer.succeed(AttemptResult(watch.NOT_PLACED))
        dial = p.Dial(leg, f"sip:{request.call}@{self.settings.outbound_trunk}",
                      display_name=p.display_name(f"{self.settings.display_name} {request.token}"),
                      from_user=request.caller, headers={"X-Callrouter-Watch": request.token},
                      timeout_seconds=min(600.0, request.timeout_s + 5))
        try:
            self._media.dial(worker, dial)
        except (LookupError, ValueError) as exc:
            logger.warning("watch %s: the call could not be placed: %s", request.key, exc)
            return defer.succeed(AttemptResult(watch.NOT_PLACED))
        a = Attempt(request, worker, leg, self._reactor.seconds(), defer.Deferred(), SessionTimers(self._reactor))
        self._attempts[leg] = a
        a.timers.start("limit", request.timeout_s, lambda: self._limit(a))
        logger.info("watch %s: calling %s for %s, from the watch range's %s", request.key,
                    mask_number(request.call), request.practice, mask_number(request.caller))
        return a.result

    def numbers_under_way(self) -> set[str]:
        """The numbers called by attempts whose leg has not ended yet."""
        return {a.request.call for a in self._attempts.values()} | {a.request.returns_on for a in self._attempts.values()}

    def callers_under_way(self) -> set[str]:
        return {a.request.caller for a in self._attempts.values()}

    # --- the call coming back (the call controller's hook) ----------------------------------------

    def returning(self, worker: str, ev: p.IncomingCall) -> bool:
        """True for a call from the watch range: released at once, and the attempt waiting for it
        (same presented number, on the number it returns on) passes. False: any other call."""
        caller = number_key(ev.caller or "")
        if caller not in self._callers:
            return False
        self._send(p.Hangup(ev.leg, self.settings.release_code))
        number = number_key(ev.number)
        a = next((a for a in self._attempts.values() if a.state in (State.DIALING, State.RINGING)
                  and number_key(a.request.caller) == caller and number_key(a.request.returns_on) == number), None)
        if a is None:
            logger.info("a call back from the watch range to %s matched no watch under way here (another "
                        "node's, or late): released, and written for the node that placed it", mask_number(ev.number))
            self._elsewhere(ev.caller or "", ev.number, ev.caller_name or "")
            return True
        rtt = max(0.0, self._reactor.seconds() - a.dialled_at)
        logger.info("watch %s: the call came back on %s after %.1f s: the forwarding works", a.request.key,
                    worker, rtt)
        self._decide(a, AttemptResult(watch.PASSED, rtt_s=round(rtt, 3), rang=a.rang,
                                      name_kept=a.request.token in (ev.caller_name or "")))
        self._send(p.Hangup(a.leg, 487))
        return True

    def returned(self, key: str, rtt_s: float, name_kept: bool | None) -> bool:
        """The call back of attempt `key` reached another node (read from the store): it passes,
        if it still waits. False when it was decided already."""
        a = self._attempts.get(LEG_PREFIX + key)
        if a is None or a.state not in (State.DIALING, State.RINGING):
            return False
        logger.info("watch %s: the call came back at another node after %.1f s: the forwarding works", key, rtt_s)
        self._decide(a, AttemptResult(watch.PASSED, rtt_s=round(max(0.0, rtt_s), 3), rang=a.rang, name_kept=name_kept))
        self._send(p.Hangup(a.leg, 487))
        return True

    # --- events of our legs (from the leg router) ---------------------------------------------------

    def handle(self, worker: str, event: Any) -> bool:
        a = self._attempts.get(getattr(event, "leg", ""))
        if a is None:
            return False
        handler = _HANDLERS.get((a.state, type(event))) or _ANY_STATE.get(type(event))
        if handler is not None:
            handler(self, a, event)
        return True

    def leg_lost(self, worker: str, leg: str, cause: str) -> bool:
        if leg in self._attempts:
            return self.handle(worker, p.LegEnded(leg, 500, cause, "worker"))
        return False

    def _progress(self, a: Attempt, ev: p.LegState) -> None:
        if ev.state == "ringing":
            a.rang, a.state = True, State.RINGING
        elif ev.state == "confirmed":
            logger.warning("watch %s: the practice's line answered: the call was not forwarded", a.request.key)
            self._decide(a, AttemptResult(watch.ANSWERED, rang=a.rang))
            self._send(p.Hangup(a.leg, 480))

    def _ended(self, a: Attempt, ev: p.LegEnded) -> None:
        if a.state is not State.DECIDED:
            outcome = watch.attempt_outcome(rang=a.rang, end_code=ev.code, by=ev.by)
            logger.info("watch %s: the call ended %s %s (%s) without coming back", a.request.key, ev.code,
                        ev.reason, ev.by)
            self._decide(a, AttemptResult(outcome, sip_code=ev.code, rang=a.rang))
        self._forget(a)

    def _limit(self, a: Attempt) -> None:
        if a.state in (State.DIALING, State.RINGING):
            logger.info("watch %s: no call back within %.0f s", a.request.key, a.request.timeout_s)
            self._decide(a, AttemptResult(watch.attempt_outcome(rang=a.rang), rang=a.rang))
            self._send(p.Hangup(a.leg, 487))

    # --- endings -------------------------------------------------------------------------------------

    def _decide(self, a: Attempt, result: AttemptResult) -> None:
        a.state, a.outcome = State.DECIDED, result
        a.timers.cancel("limit")
        a.timers.start("guard", self.settings.guard_s, lambda: self._forget(a))
        if not a.result.called:
            a.result.callback(result)

    def _forget(self, a: Attempt) -> None:
        a.state = State.ENDED
        a.timers.close()
        self._attempts.pop(a.leg, None)

    def _send(self, command: p.Command) -> None:
        try:
            self._media.send(command)
        except (LookupError, ValueError) as exc:
            logger.info("watch command %s not sent: %s", command.type, exc)


def _ignore(calls: WatchCalls, a: Attempt, ev: Any) -> None:
    """An event that changes nothing in this state."""


_HANDLERS: dict[tuple[State, type], Callable[[WatchCalls, Attempt, Any], None]] = {
    (State.DIALING, p.LegState): WatchCalls._progress,
    (State.RINGING, p.LegState): WatchCalls._progress,
}
_ANY_STATE: dict[type, Callable[[WatchCalls, Attempt, Any], None]] = {
    p.LegEnded: WatchCalls._ended,
    p.LegState: _ignore,
    p.PlaybackFinished: _ignore,
    p.Digit: _ignore,
    p.Error: _ignore,
}
