"""Re-adoption: a controller started while the media service kept the workers (and their calls)
takes the calls back from what the workers report and what the call records say.

Each worker taken over reports its live legs (`leg_report`, then `legs_reported`, see
callrouter.media.protocol); each caller's leg is matched to its open call record by the leg's id
(`calls.caller_leg`):

- a caller bridged to a leg, of the same worker or of another one through a relay (both ends
  report the relay's id), whose record says answered: the call is rebuilt bridged to that leg,
  with the secretary of the record on the call; it ends as any call does (the record is completed
  normally, `answered`);
- a caller whose record says queued: back in her queue at her place (the order is by priority then
  by the time she was queued, from the record), hearing the hold music again at once; the
  overflow's wait_max and the position announcements keep their schedule from her queued time
  (the announcement is Offers' own, reached by its `_announce_position` until it has a public
  name);
- a secretary's phone ringing for a queued caller (a dialled leg named after the call,
  `<call id[:12]>-s<n>`, whose remote URI is a secretary the desk knows): it rings on, the caller
  hearing the ringback, for at most ring_timeout_s more; answered, she is bridged as any offer;
  answered while no controller was there, she is bridged at once;
- a caller in the menu or anywhere else (a voicemail, a callback dialogue): the practice's rules
  are applied again from the start (the welcome and the menu), never silence;
- a caller's leg without a record (the record never written): hung up (480);
- a dialled leg no call takes back (an alert call, a forward, a transfer, an offer to a
  secretary the desk no longer has): hung up (487), the caller being offered again from the queue.

Nothing is rebuilt before every worker taken over has reported (or `settle_s` after the pool is
ready, at most), and the bridged calls are rebuilt first, then those still ringing a phone: a
secretary on a call, or whose phone rings, on one worker is never offered a caller waiting on
another. Then this node's call records still open that no leg
was found for are closed, as failed `controller_restart`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any, Callable, Iterable

from twisted.internet import defer, task

from callrouter.controller.player import PromptPlayer, SessionTimers
from callrouter.controller.session import CallSession, State
from callrouter.domain.call import Call
from callrouter.media import protocol as p

logger = logging.getLogger(__name__)

CAUSE = "controller_restart"


class Readoption:
    def __init__(self, controller: Any, legs: Any, records: Callable[[], defer.Deferred],
                 close_rest: Callable[[tuple[str, ...]], Any], router: Callable[[], Any], reactor: Any,
                 expected: Callable[[], Iterable[str]], settle_s: float = 5.0) -> None:
        """`records()`: fires with the open call records (store.calls.CallRepository.open_calls,
        on a thread); `close_rest(kept)`: closes this node's other open records; `expected()`: the
        workers taken over, each of which reports (media.pool.MediaPool.taken_over)."""
        self._controller, self._records, self._close_rest = controller, records, close_rest
        self._router, self._reactor, self._settle_s, self._expected = router, reactor, settle_s, expected
        self._reports: dict[str, list[p.LegReport]] = {}
        self._reported: set[str] = set()
        self.adopted: dict[str, str] = {}  # call id -> how: bridged, queued, again
        legs.take_reports(self.report)

    def report(self, worker: str, event: Any) -> None:
        if isinstance(event, p.LegReport):
            self._reports.setdefault(worker, []).append(event)
        elif isinstance(event, p.LegsReported):
            self._reported.add(worker)

    @defer.inlineCallbacks
    def settle(self, ready: defer.Deferred):
        """Once the pool is ready and every worker taken over reported (settle_s at most): the
        calls rebuilt, then the records left closed."""
        yield ready
        deadline = self._reactor.seconds() + self._settle_s
        while not set(self._expected()) <= self._reported and self._reactor.seconds() < deadline:
            yield task.deferLater(self._reactor, 0.05, lambda: None)
        records = yield self._records()
        reports = {w: legs for w, legs in self._reports.items() if w in self._reported}
        self._rebuild(records, reports)
        yield self._close_rest(tuple(self.adopted))
        if self.adopted:
            logger.warning("re-adopted %d call(s) kept by the media service", len(self.adopted))

    # -- rebuilding --------------------------------------------------------------------------

    def _rebuild(self, records: list, reports: dict[str, list[p.LegReport]]) -> None:
        """The bridged calls of every worker first (their secretaries busy), then the others."""
        by_leg = {r.caller_leg: r for r in records if getattr(r, "caller_leg", None)}
        ctx = self._controller.ctx
        taken: set[str] = set()
        later: list[tuple[str, p.LegReport, Any]] = []
        relayed: dict[str, list[str]] = {}  # relay id -> the legs at its two ends
        for legs in reports.values():
            for rep in legs:
                for relay in filter(None, rep.relays.split(",")):
                    relayed.setdefault(relay, []).append(rep.leg)
        for worker, legs in reports.items():
            reported = {r.leg for r in legs}
            for rep in legs:
                if rep.outgoing:
                    continue
                record = by_leg.get(rep.leg)
                if record is None or rep.state != "confirmed":
                    logger.warning("leg %s on %s has no open call record: hung up", rep.leg, worker)
                    ctx.send(worker, p.Hangup(rep.leg, 480))
                    continue
                taken.add(rep.leg)
                partner = next((leg for leg in rep.bridged.split(",") if leg in reported), None) or next(
                    (leg for relay in filter(None, rep.relays.split(",")) for leg in relayed.get(relay, ())
                     if leg != rep.leg), None)
                if record.answered_at is not None and partner is not None:
                    taken.add(partner)
                    self._bridged(worker, rep, record, partner)
                else:
                    later.append((worker, rep, record))
        offered = _offers(reports, taken)
        kept = {record.id: offered.pop(record.id[:12], []) for _, _, record in later
                if record.queued_at is not None and record.answered_at is None}
        taken |= {offer.leg for offers in kept.values() for _, offer in offers}
        for worker, legs in reports.items():
            for rep in legs:
                if rep.outgoing and rep.leg not in taken:
                    ctx.send(worker, p.Hangup(rep.leg, 487))
        # The calls still ringing a phone first: their secretaries are not idle for the others.
        for worker, rep, record in sorted(later, key=lambda item: not kept.get(item[2].id)):
            self._again(worker, rep, record, kept.get(record.id, []))

    def _session(self, worker: str, rep: p.LegReport, record: Any) -> CallSession:
        ctx = self._controller.ctx
        dialplan = self._router().by_number.get(record.number)
        call = Call(record.number, record.caller, arrived_at=record.arrived_at)
        player = PromptPlayer(lambda command: ctx.send(worker, command), rep.leg)
        return CallSession(record.id, worker, rep.leg, dialplan, call, player, SessionTimers(ctx.reactor),
                           call_started=record.arrived_at, queue_name=record.queue)

    def _bridged(self, worker: str, rep: p.LegReport, record: Any, partner: str) -> None:
        controller = self._controller
        s = self._session(worker, rep, record)
        s.state, s.other_leg, s.outcome, s.bridged_at = State.BRIDGED, partner, "answered", controller.ctx.seconds()
        secretary = controller.desk.queues.find(record.secretary) if record.secretary else None
        if secretary is not None:
            s.secretary = secretary
            controller.desk.answered(secretary, record.id)
        controller.adopt(s)
        self.adopted[record.id] = "bridged"
        logger.info("call %s re-adopted on %s: bridged to %s", record.id, worker, partner)

    def _again(self, worker: str, rep: p.LegReport, record: Any, offers: list[tuple[str, p.LegReport]]) -> None:
        """Back in her queue at her place if the record says queued (still ringing the phones
        `offers` if any rang); else the rules from the start."""
        controller, ctx = self._controller, self._controller.ctx
        s = self._session(worker, rep, record)
        self.adopted[record.id] = "again"
        router = self._router()
        queue = s.dialplan.queues.get(record.queue) if s.dialplan is not None and record.queue else None
        if queue is not None and record.queued_at is not None:
            s.decision = router.decide(s.call, ctx.now())
            ringing = self._ringing(s, offers)
            controller.adopt(s)  # with the phones still ringing for her: their events are hers
            self._requeue(s, record, queue, ringing)
            return
        for leg_worker, offer in offers:
            ctx.send(leg_worker, p.Hangup(offer.leg, 487))
        controller.adopt(s)
        if s.dialplan is None:
            controller.hangup(s, "failed")
            return
        decision = router.decide(s.call, ctx.now())
        s.decision = decision
        logger.info("call %s re-adopted on %s: its rules applied again", record.id, worker)
        controller.flow.apply(s, decision)

    def _ringing(self, s: CallSession, offers: list[tuple[str, p.LegReport]]) -> list[tuple[str, p.LegReport]]:
        """The offers still ringing (or answered meanwhile) whose secretary the desk knows, as the
        call's offers again; the others hung up."""
        controller, kept = self._controller, []
        for worker, offer in offers:
            secretary = controller.desk.queues.find(_uri(offer.peer))
            if secretary is None:
                controller.ctx.send(worker, p.Hangup(offer.leg, 487))
                continue
            s.offers[offer.leg] = secretary
            s.tried.add(secretary.uri)
            kept.append((worker, offer))
        return kept

    def _requeue(self, s: CallSession, record: Any, queue: Any, ringing: list[tuple[str, p.LegReport]]) -> None:
        """Her place in line from her record's queued time; the overflow's wait_max and the
        position announcements keep their schedule from it; a phone that was ringing for her
        rings on (ring_timeout_s more at most), one answered meanwhile is bridged at once."""
        controller, ctx = self._controller, self._controller.ctx
        dialplan = s.dialplan
        waited = max(0.0, (ctx.now() - _aware(record.queued_at)).total_seconds())
        line = queue.line or f"{dialplan.practice}/{record.queue}"
        book = controller.desk.queues
        s.state = State.QUEUED
        s.waiting = book.enqueue(s, dialplan.practice, record.queue, queue.priority, ctx.seconds() - waited,
                                 line=line, strategy=queue.strategy, zone=controller.counts.zone(dialplan.practice))
        self._schedule(s, queue, waited)
        self.adopted[s.call_id] = "queued"
        if ringing:
            self._ring_on(s, record, ringing)
            return
        ctx.loop(s, ctx.settings.hold_prompt)
        controller.line.changed(dialplan.practice, record.queue)
        logger.info("call %s re-adopted on %s: back in queue %s (waiting %.0fs)", s.call_id, s.worker,
                    record.queue, waited)
        controller.line.dispatch()

    def _schedule(self, s: CallSession, queue: Any, waited: float) -> None:
        controller = self._controller
        overflow = s.dialplan.routes.overflow
        if overflow is not None:
            s.timers.start("wait_max", max(0.0, overflow.wait_max_s - waited), lambda: controller.flow.overflow(s, "wait"))
        interval = queue.announce_interval_s
        if interval > 0:
            # Offers' own announcement, which schedules the next one itself (see the docstring).
            s.timers.start("announce", interval - waited % interval, lambda: controller.offers._announce_position(s))

    def _ring_on(self, s: CallSession, record: Any, ringing: list[tuple[str, p.LegReport]]) -> None:
        controller, ctx = self._controller, self._controller.ctx
        controller.desk.queues.remove(s)
        s.state = State.RINGING
        console = f"{ctx.settings.console_url}/practices/{s.practice}?call={s.call_id}"
        queued_at = _aware(record.queued_at)
        for _, offer in ringing:
            controller.desk.ringing(s.offers[offer.leg], dict(
                dialplan=s.dialplan, call_id=s.call_id, caller=s.call.caller,
                calls_today=controller.counts.calls_today(s.practice, s.call.caller), site=None, queue=record.queue,
                reason=None, tier=None, ivr_answers=[], console_url=console, queued_at=queued_at))
        controller.line.changed(s.practice, record.queue)
        ctx.loop(s, ctx.settings.ringback_prompt)
        s.timers.start("ring", ctx.settings.ring_timeout_s, lambda: self._rung_out(s))
        logger.info("call %s re-adopted on %s: %s still ringing", s.call_id, s.worker,
                    ", ".join(a.id for a in s.offers.values()))
        for worker, offer in ringing:
            if offer.state == "confirmed":  # she answered while no controller was there
                controller.handle(worker, p.LegState(offer.leg, "confirmed"))

    def _rung_out(self, s: CallSession) -> None:
        if s.state is State.RINGING and s.offers:
            logger.info("call %s: %s did not answer in time", s.call_id, ", ".join(a.id for a in s.offers.values()))
            self._controller.offers.withdraw(s, "ring_timeout", missed=True)


def _offers(reports: dict[str, list[p.LegReport]], taken: set[str]) -> dict[str, list[tuple[str, p.LegReport]]]:
    """The dialled legs that are a call's offers to a secretary (named `<call id[:12]>-s<n>` by
    controller.offers), by that call id prefix."""
    out: dict[str, list[tuple[str, p.LegReport]]] = {}
    for worker, legs in reports.items():
        for rep in legs:
            match = _OFFER_LEG.fullmatch(rep.leg)
            if rep.outgoing and rep.leg not in taken and match:
                out.setdefault(match.group(1), []).append((worker, rep))
    return out


def _uri(peer: str) -> str:
    """The SIP URI in a remote URI as pjsua reports it (`"Name" <sip:x@h:p>;tag=...`)."""
    match = _SIP_URI.search(peer)
    return match.group(0) if match else peer


_OFFER_LEG = re.compile(r"([0-9a-f]{12})-s[0-9]+")
_SIP_URI = re.compile(r"sips?:[^>;\s]+")


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.timezone.utc)
