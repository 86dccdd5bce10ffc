"""A call in the queue: waiting on hold, hearing its place, offered to secretaries, answered.

A call joins its queue's line (unless nobody covering it can take calls, or the line is full: it
overflows then), hears the hold music and, every `announce_interval_s`, its place and the expected
wait. When it is its turn (callrouter.controller.line) the chosen secretaries' phones ring, each
after her screen-pop went out; the first to answer is bridged with the caller. A phone that rings
out, is busy or declines is a missed offer (hers, callrouter.controller.desk) and the call goes back
to its place in line; one our own worker could not place is no miss, and the call waits
HOLD_BACK_S before its next offer instead of going round at once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from pathlib import Path
from typing import Callable, MutableMapping

from callrouter.controller.context import CallContext
from callrouter.controller.counts import CallCounts
from callrouter.controller.desk import Desk
from callrouter.controller.line import Line
from callrouter.controller.session import CallSession, State
from callrouter.domain.serving import Secretary, Waiting
from callrouter.media import protocol as p

logger = logging.getLogger(__name__)

HOLD_BACK_S = 2.0  # before offering again a call our worker could not offer
DEFAULT_HANDLING_S = 180.0  # until a queue has history: a typical medical-secretariat call
HANDLING_WEIGHT = 0.2
POSITIONS_ANNOUNCED = 5  # "vous êtes le cinquième appel"; past it: "plus de 5 personnes attendent"


class Offers:
    def __init__(self, ctx: CallContext, desk: Desk, line: Line, counts: CallCounts,
                 legs: MutableMapping[str, CallSession], overflow: Callable[[CallSession, str], None]) -> None:
        """`legs`: the controller's secretaries' and forwards' legs; `overflow(call, cause)`: where
        a call goes when it may not wait (nobody, length) or waited too long."""
        self._ctx, self._desk, self._line, self._counts = ctx, desk, line, counts
        self._legs = legs
        self._overflow = overflow
        self._seq = itertools.count(1)
        self._handling: dict[str, float] = {}  # line -> recent handling time (EWMA, s)
        line.serve(CallSession, self.offer)

    def enqueue(self, s: CallSession, queue: str) -> None:
        ctx, dialplan = self._ctx, s.dialplan
        q = dialplan.queues[queue]
        overflow = dialplan.routes.overflow
        s.queue_name = queue
        line = q.line or f"{dialplan.practice}/{queue}"
        queues = self._line.queues
        if not s.overflowed:
            if not any(a.reachable for a in queues.covering(dialplan.practice, queue, line)):
                self._overflow(s, "nobody")  # nobody covering the practice is logged in and registered
                return
            if overflow is not None and queues.length(line) >= overflow.queue_max:
                self._overflow(s, "length")
                return
        s.state = State.QUEUED
        s.waiting = queues.enqueue(s, dialplan.practice, queue, q.priority, ctx.seconds(),
                                   line=line, strategy=q.strategy, zone=self._counts.zone(dialplan.practice))
        ctx.recorder.queued(s.call_id, queue, ctx.now())
        d = s.decision
        ctx.events.call_queued(s.call_id, s.practice, queue, reason=d.reason if d else None, tier=d.tier if d else None)
        self._line.changed(dialplan.practice, queue)
        ctx.loop(s, ctx.settings.hold_prompt)
        if overflow is not None and not s.overflowed:
            s.timers.start("wait_max", overflow.wait_max_s, lambda: self._overflow(s, "wait"))
        s.timers.start("announce", q.announce_interval_s, lambda: self._announce_position(s))
        self._line.dispatch()

    def _announce_position(self, s: CallSession) -> None:
        if s.state is not State.QUEUED:
            return
        ctx = self._ctx
        position = self._line.queues.position(s)
        names = [position_prompt(position), wait_prompt(self.estimated_wait(s.waiting, position))]
        names = [n for n in names if Path(ctx.path(n, s.practice)).exists()] or ["queue_position"]
        ctx.play(s, names, lambda: ctx.loop(s, ctx.settings.hold_prompt) if s.state is State.QUEUED else None)
        interval = s.dialplan.queues[s.waiting.queue].announce_interval_s
        s.timers.start("announce", interval, lambda: self._announce_position(s))

    def estimated_wait(self, w: Waiting, position: int) -> float:
        """Seconds until a secretary takes this call: calls ahead times the recent handling time,
        shared among the secretaries covering the queue who take calls now (logged in, softphone
        registered, not paused; on a call or not): the configured ones who are away answer none."""
        handling = self._handling.get(w.line, DEFAULT_HANDLING_S)
        secretaries = max(1, sum(1 for a in self._line.queues.covering(w.practice, w.queue, w.line) if a.reachable))
        return position * handling / secretaries

    def handled(self, s: CallSession) -> None:
        """Feed the handling-time average with a call that a secretary just finished."""
        if s.waiting is None or s.bridged_at is None:
            return
        wrap_up = s.dialplan.queues[s.waiting.queue].wrap_up_s
        sample = self._ctx.seconds() - s.bridged_at + wrap_up
        old = self._handling.get(s.waiting.line, DEFAULT_HANDLING_S)
        self._handling[s.waiting.line] = old + HANDLING_WEIGHT * (sample - old)

    def offer(self, w: Waiting, secretaries: list[Secretary]) -> None:
        """Ring `secretaries` (one, or all for ring_all) for the call `w`: screen-pop first, then the
        phone, each with the practice's diary context in its headers."""
        ctx, s = self._ctx, w.session
        self._line.queues.remove(s)
        s.state = State.RINGING
        d = s.decision
        label = (d.reason if d and d.reason else s.dialplan.queues[w.queue].label)
        console = f"{ctx.settings.console_url}/practices/{s.practice}?call={s.call_id}"
        headers = {
            "X-Callrouter-Call-Id": s.call_id,
            "X-Callrouter-Practice": s.practice,
            "X-Callrouter-Reason": p.header_safe(d.reason or "") if d else "",
            "X-Callrouter-Tier": d.tier or "" if d else "",
            "Call-Info": f"<{console}>;purpose=info",
        }
        caller = s.call.caller
        calls_today = self._counts.calls_today(s.practice, caller)
        queued_at = dt.datetime.fromtimestamp(w.enqueued_at, dt.timezone.utc)  # her console counts the wait from it
        self._line.changed(w.practice, w.queue)
        for secretary in secretaries:
            s.tried.add(secretary.uri)
            leg = f"{s.call_id[:12]}-s{next(self._seq)}"
            s.offers[leg] = secretary
            self._legs[leg] = s
            pop = dict(dialplan=s.dialplan, call_id=s.call_id, caller=caller, calls_today=calls_today,
                       site=d.site if d else None, queue=w.queue, reason=d.reason if d else None,
                       tier=d.tier if d else None, ivr_answers=list(s.ivr_answers), console_url=console,
                       queued_at=queued_at)
            self._desk.ringing(secretary, pop)  # the screen-pop goes out before her phone rings
            dial = p.Dial(leg, secretary.uri, display_name=p.display_name(f"{s.dialplan.name} - {label}"),
                          headers=headers, timeout_seconds=ctx.settings.ring_timeout_s + 5)
            lead = ctx.settings.pop_lead_s
            if lead > 0:  # her console's card first: the phone rings a moment after the pop left
                ctx.reactor.callLater(lead, self._dial_if_still_offered, s, leg, dial)
            else:
                ctx.send(s.worker, dial)
            ctx.recorder.offered(s.call_id, secretary.uri, ctx.now())
            ctx.recorder.leg_started(s.call_id, leg, "secretary", secretary.uri, ctx.now())
        ctx.loop(s, ctx.settings.ringback_prompt)
        s.timers.start("ring", ctx.settings.ring_timeout_s, lambda: self._ring_timeout(s))

    def _dial_if_still_offered(self, s: CallSession, leg: str, dial) -> None:
        if leg in s.offers and s.state == State.RINGING:
            self._ctx.send(s.worker, dial)

    def _ring_timeout(self, s: CallSession) -> None:
        if s.state is State.RINGING and s.offers:
            logger.info("call %s: %s did not answer in time", s.call_id, ", ".join(a.id for a in s.offers.values()))
            self.withdraw(s, "ring_timeout", missed=True)

    def withdraw(self, s: CallSession, cause: str, missed: bool) -> None:
        """Stop every phone still ringing for this call, then put it back in line."""
        for leg in list(s.offers):
            self._ctx.send(s.worker, p.Hangup(leg, 487))
            self.offer_ended(s, leg, cause, missed)

    def offer_ended(self, s: CallSession, leg: str, cause: str, missed: bool = False,
                    hold_back: bool = False) -> None:
        """One secretary did not take the call; `missed` when it was hers to take (no answer, busy,
        declined): after `max_missed_offers` in a row she is paused, with the reason. When no phone
        rings for it any more, the call goes back to its place in line (after HOLD_BACK_S when
        `hold_back`: the media worker could not place the offer)."""
        ctx = self._ctx
        secretary = s.offers.pop(leg, None)
        self._legs.pop(leg, None)
        ctx.recorder.leg_ended(leg, cause, ctx.now())
        if secretary is not None:
            if hold_back:
                s.tried.discard(secretary.uri)
            if missed:
                self._desk.missed(secretary)
            self._desk.free(secretary, wrap_up=0)
        if s.offers or s.state is not State.RINGING:
            return
        s.timers.cancel("ring")
        s.state = State.QUEUED
        if hold_back:
            ctx.loop(s, ctx.settings.hold_prompt)
            s.timers.start("hold_back", HOLD_BACK_S, lambda: self._back_in_line(s))
            return
        self._back_in_line(s)

    def _back_in_line(self, s: CallSession) -> None:
        if s.state is not State.QUEUED:
            return
        ctx, queues = self._ctx, self._line.queues
        queues.requeue(s.waiting)
        ctx.events.call_queued(s.call_id, s.practice, s.waiting.queue)
        self._line.changed(s.waiting.practice, s.waiting.queue)
        covering = queues.covering(s.waiting.practice, s.waiting.queue, s.waiting.line)
        if all(a.uri in s.tried for a in covering):
            s.tried.clear()  # everyone was tried: start a new round
        ctx.loop(s, ctx.settings.hold_prompt)
        self._line.dispatch()

    def connected(self, s: CallSession, leg: str) -> None:
        """The leg it rang answered: a secretary's offer (the others stop ringing) or its forward."""
        ctx = self._ctx
        for name in ("ring", "wait_max", "announce"):
            s.timers.cancel(name)
        s.player.forget()
        answered_offer = s.state is State.RINGING
        if answered_offer:
            s.secretary = s.offers.pop(leg)
            s.other_leg = leg
        ctx.send(s.worker, p.Bridge(s.leg, s.other_leg))
        if answered_offer:
            secretary = s.secretary
            self._desk.answered(secretary, s.call_id)
            waited = ctx.seconds() - s.waiting.enqueued_at
            ctx.metrics.queue_wait.labels(s.practice, s.waiting.queue).observe(waited)
            ctx.recorder.answered(s.call_id, secretary.uri, ctx.now())
            ctx.events.call_answered(s.call_id, s.practice, secretary.id, waited_s=waited)
        s.state = State.BRIDGED
        s.bridged_at = ctx.seconds()
        s.outcome = "answered"
        if answered_offer:  # a patient and the secretary who answered her: maybe recorded (never a forward)
            ctx.recordings.bridged(s)
        for other in list(s.offers):  # ring_all: the others stop ringing, not counted as missed
            ctx.send(s.worker, p.Hangup(other, 487))
            self.offer_ended(s, other, "answered_elsewhere")


def position_prompt(position: int) -> str:
    if 1 <= position <= POSITIONS_ANNOUNCED:
        return f"queue_position_{position}"
    return f"queue_position_more_{POSITIONS_ANNOUNCED}" if position > POSITIONS_ANNOUNCED else "queue_position"


def wait_prompt(seconds: float) -> str:
    for limit, name in ((60, "wait_1"), (120, "wait_2"), (300, "wait_5"), (600, "wait_10")):
        if seconds <= limit:
            return name
    return "wait_long"
