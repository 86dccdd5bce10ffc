"""A call handed from one secretary to a colleague (docs/acd.md, "Transfer to a colleague").

The secretary on a call (or a supervisor) asks for a colleague who covers the call's practice and
can take a call now (callrouter.domain.transfer). The patient is taken off her secretary's audio and
hears the queue's hold music; the first secretary's leg stays up, on hold (she hears it too). The
colleague is offered the call as any offer is: her screen-pop with the practice's card, then, after
`pop_lead_s`, her phone rings with the call's headers, for at most `ring_timeout_s`.

- She answers: the patient is bridged with her, the first secretary's leg is hung up (she goes to
  her after-call state, as at the end of a call) and the colleague is the call's secretary from then
  on. The call stays answered once: its record keeps who answered it (`secretary`) and gains the
  colleague's leg (kind `transfer`) while the first secretary's leg ends with cause `transferred`.
- She refuses, rings out or cannot be reached: the patient is bridged back with the first secretary,
  whose console is told (the call's `transfer_failed` event names the colleague).
- The first secretary hangs up meanwhile: the transfer goes on; if the colleague does not take it
  the call ends. The patient hangs up: the colleague's phone stops ringing.

A transfer is not an offer of the line: refusing one never counts as a missed offer.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from dataclasses import dataclass
from typing import Any, Callable, MutableMapping

from callrouter.controller.context import CallContext
from callrouter.controller.counts import CallCounts
from callrouter.controller.desk import Desk
from callrouter.controller.line import Line
from callrouter.controller.session import CallSession, State
from callrouter.domain import transfer as rules
from callrouter.domain.errors import UnknownCall
from callrouter.domain.serving import Secretary
from callrouter.domain.transfer import NotYourCall, TransferRefused
from callrouter.media import protocol as p

logger = logging.getLogger(__name__)

TRANSFERRED = "transferred"  # the end cause of the first secretary's leg once her colleague took over
__all__ = ["Transfers", "NotYourCall", "TransferRefused", "TRANSFERRED"]


@dataclass(eq=False)
class Pending:
    """A transfer under way: the colleague's leg ringing, the first secretary's leg on hold."""

    leg: str
    to: Secretary
    first: Secretary
    first_leg: str | None  # None once the first secretary hung up
    by: str


class Transfers:
    def __init__(self, ctx: CallContext, desk: Desk, line: Line, counts: CallCounts,
                 sessions: MutableMapping[str, CallSession], legs: MutableMapping[str, CallSession],
                 hangup: Callable[[CallSession, str], None]) -> None:
        """`sessions`: the controller's calls by caller leg; `legs`: its dialled legs (the
        colleague's is registered there, so its events come back through the controller);
        `hangup(call, outcome)`: end a call."""
        self._ctx, self._desk, self._line, self._counts = ctx, desk, line, counts
        self._sessions, self._legs, self._hangup = sessions, legs, hangup
        self._pending: dict[str, Pending] = {}  # call id -> its transfer under way
        self._seq = itertools.count(1)

    # --- what the API asks (on the reactor thread) ---------------------------------------------------

    def colleagues(self, call_id: str, requester: str | None = None) -> list[dict[str, Any]]:
        """The colleagues who could take over call `call_id` now (their desk views)."""
        s = self._session(call_id, requester)
        if s.waiting is None:
            return []
        covering = self._covering(s)
        return [self._desk.secretary_view(a) for a in rules.colleagues(covering, s.secretary)]

    def transfer(self, call_id: str, to: str, by: str, requester: str | None = None) -> dict[str, Any]:
        """Start handing call `call_id` to colleague `to`; `requester`: the secretary asking (her
        own call only), None for a supervisor. Raises UnknownCall, NotYourCall, TransferRefused."""
        s = self._session(call_id, requester)
        in_progress = s.state is State.BRIDGED and s.waiting is not None and s.other_leg is not None
        target = self._desk.queues.find(to)
        covering = self._covering(s) if s.waiting is not None else []
        refused = rules.refusal(in_progress, call_id in self._pending, s.secretary, to, target, covering)
        if refused is not None:
            raise TransferRefused(refused)
        assert target is not None and s.secretary is not None and s.other_leg is not None
        self._start(s, target, by)
        return {"call_id": call_id, "state": "transferring", "from": s.secretary.id, "to": target.id}

    def transferring(self, call_id: str) -> bool:
        return call_id in self._pending

    # --- what the call controller tells -----------------------------------------------------------

    def answered(self, s: CallSession, leg: str) -> bool:
        """A dialled leg of `s` answered: True when it was a colleague's transfer leg (taken over)."""
        t = self._pending.get(s.call_id)
        if t is None or leg != t.leg:
            return False
        self._taken(s, t)
        return True

    def leg_ended(self, s: CallSession, leg: str, cause: str) -> bool:
        """A dialled leg of `s` ended: True when this module dealt with it (the colleague's leg, or
        the first secretary's while her call is being handed over)."""
        t = self._pending.get(s.call_id)
        if t is None:
            return False
        if leg == t.leg:
            self._legs.pop(leg, None)
            self._failed(s, t, cause, hang_up=False)
            return True
        if leg == t.first_leg:  # she hung up while on hold: the colleague may still take the call
            ctx = self._ctx
            self._legs.pop(leg, None)
            ctx.recorder.leg_ended(leg, cause, ctx.now())
            t.first_leg, s.other_leg, s.secretary = None, None, None
            self._desk.free(t.first, self._wrap_up(s))
            return True
        return False

    def call_ended(self, s: CallSession) -> None:
        """The call ends (its patient hung up...): the colleague's phone stops ringing."""
        t = self._pending.pop(s.call_id, None)
        if t is None:
            return
        ctx = self._ctx
        ctx.send(s.worker, p.Hangup(t.leg, 487))
        self._legs.pop(t.leg, None)
        ctx.recorder.leg_ended(t.leg, "caller_ended", ctx.now())
        self._desk.free(t.to, wrap_up=0)

    # --- the transfer -------------------------------------------------------------------------------

    def _start(self, s: CallSession, to: Secretary, by: str) -> None:
        ctx, first, first_leg = self._ctx, s.secretary, s.other_leg
        assert first is not None and first_leg is not None and s.waiting is not None
        leg = f"{s.call_id[:12]}-t{next(self._seq)}"
        t = self._pending[s.call_id] = Pending(leg, to, first, first_leg, by)
        self._legs[leg] = s
        ctx.send(s.worker, p.Unbridge(s.leg, first_leg))
        ctx.loop(s, ctx.settings.hold_prompt)  # the patient hears the queue's music
        ctx.send(s.worker, p.Play(first_leg, ctx.path(ctx.settings.hold_prompt, s.practice), loop=True))
        d = s.decision
        console = f"{ctx.settings.console_url}/practices/{s.practice}?call={s.call_id}"
        pop = dict(dialplan=s.dialplan, call_id=s.call_id, caller=s.call.caller,
                   calls_today=self._counts.calls_today(s.practice, s.call.caller),
                   site=d.site if d else None, queue=s.waiting.queue, reason=d.reason if d else None,
                   tier=d.tier if d else None, ivr_answers=list(s.ivr_answers), console_url=console,
                   queued_at=dt.datetime.fromtimestamp(s.waiting.enqueued_at, dt.timezone.utc))
        self._desk.ringing(to, pop)  # her screen-pop first, as for any offer
        headers = {"X-Callrouter-Call-Id": s.call_id, "X-Callrouter-Practice": s.practice,
                   "X-Callrouter-Reason": p.header_safe(d.reason or "") if d else "",
                   "X-Callrouter-Tier": (d.tier or "") if d else "",
                   "X-Callrouter-Transfer-From": p.header_safe(first.id), "Call-Info": f"<{console}>;purpose=info"}
        assert s.dialplan is not None
        dial = p.Dial(leg, to.uri, display_name=p.display_name(f"{s.dialplan.name} - transfert de {first.id}"),
                      headers=headers, timeout_seconds=ctx.settings.ring_timeout_s + 5)
        if ctx.settings.pop_lead_s > 0:
            ctx.reactor.callLater(ctx.settings.pop_lead_s, self._dial_if_pending, s, t, dial)
        else:
            ctx.send(s.worker, dial)
        ctx.recorder.leg_started(s.call_id, leg, "transfer", to.uri, ctx.now())
        s.timers.start("transfer", ctx.settings.ring_timeout_s, lambda: self._ring_timeout(s, t))
        ctx.events.call_transfer(s.call_id, s.practice, "transferring", from_secretary=first.id,
                                 to_secretary=to.id, by=by)
        logger.info("call %s: %s hands it to %s", s.call_id, first.id, to.id)

    def _dial_if_pending(self, s: CallSession, t: Pending, dial: p.Dial) -> None:
        if self._pending.get(s.call_id) is t:
            self._ctx.send(s.worker, dial)

    def _ring_timeout(self, s: CallSession, t: Pending) -> None:
        if self._pending.get(s.call_id) is t:
            logger.info("call %s: %s did not take the transfer in time", s.call_id, t.to.id)
            self._failed(s, t, "ring_timeout", hang_up=True)

    def _taken(self, s: CallSession, t: Pending) -> None:
        ctx = self._ctx
        del self._pending[s.call_id]
        s.timers.cancel("transfer")
        s.player.forget()
        ctx.send(s.worker, p.Bridge(s.leg, t.leg))
        if t.first_leg is not None:
            ctx.send(s.worker, p.Hangup(t.first_leg, 487))
            self._legs.pop(t.first_leg, None)
            ctx.recorder.leg_ended(t.first_leg, TRANSFERRED, ctx.now())
            self._desk.free(t.first, self._wrap_up(s))
        s.secretary, s.other_leg = t.to, t.leg
        self._desk.took_over(t.to)
        ctx.events.call_transfer(s.call_id, s.practice, "transferred", from_secretary=t.first.id,
                                 to_secretary=t.to.id, by=t.by)
        logger.info("call %s: %s took it over from %s", s.call_id, t.to.id, t.first.id)

    def _failed(self, s: CallSession, t: Pending, cause: str, hang_up: bool) -> None:
        ctx = self._ctx
        del self._pending[s.call_id]
        s.timers.cancel("transfer")
        if hang_up:
            ctx.send(s.worker, p.Hangup(t.leg, 487))
            self._legs.pop(t.leg, None)
        ctx.recorder.leg_ended(t.leg, cause, ctx.now())
        self._desk.free(t.to, wrap_up=0)
        ctx.events.call_transfer(s.call_id, s.practice, "transfer_failed", from_secretary=t.first.id,
                                 to_secretary=t.to.id, by=t.by, cause=cause)
        if t.first_leg is None:  # nobody left to take the patient back
            logger.info("call %s: %s did not take it and %s had left", s.call_id, t.to.id, t.first.id)
            self._hangup(s, "answered")
            return
        s.player.forget()
        ctx.send(s.worker, p.Bridge(s.leg, t.first_leg))
        logger.info("call %s: %s did not take it (%s): back to %s", s.call_id, t.to.id, cause, t.first.id)

    # --- helpers ------------------------------------------------------------------------------------

    def _session(self, call_id: str, requester: str | None) -> CallSession:
        s = next((s for s in self._sessions.values() if s.call_id == call_id and s.state is not State.ENDED), None)
        if s is None:
            raise UnknownCall(call_id)
        if requester is not None:
            t = self._pending.get(call_id)
            asking = self._desk.queues.find(requester)
            if asking is None or not any(asking is a for a in (s.secretary, t.first if t else None)):
                raise NotYourCall(call_id)
        return s

    def _covering(self, s: CallSession) -> list[Secretary]:
        assert s.waiting is not None
        return self._line.queues.covering(s.waiting.practice, s.waiting.queue, s.waiting.line)

    @staticmethod
    def _wrap_up(s: CallSession) -> float:
        return s.dialplan.queues[s.waiting.queue].wrap_up_s if (s.waiting and s.dialplan) else 0
