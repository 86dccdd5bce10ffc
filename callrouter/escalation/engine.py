"""The escalation engine: runs each chain step by step through the outbox, durable across restarts.

For each chain: read its state from the store (the database is the truth, so an acknowledgement
recorded by any path or node is seen), ask `next_step`, then send, skip, wait or finish. A step is
claimed in the outbox before it is sent (state `sending`), then marked `sent` or `failed`.

Restart choice: rows left in `sending` by a dead process become `unknown` and are NOT re-sent (a
blind re-send would page a practitioner twice, and the generic gateways give no way to ask whether
a message left). The chain continues after them, honouring the step's wait from when it was
claimed, since the message may well have reached the practitioner. Gateways that honour the
`Idempotency-Key` header we send could safely be retried instead; not done yet.

An exhausted chain is never silent: its duty contact is alerted through the outbox, and it is
counted, published and logged (callrouter.escalation.duty).

With several nodes (callrouter.cluster) the engine runs on the leading node only: its Leadership
starts the service when the node takes the lead (every open chain resumes, as after a restart) and
stops it when the lead is lost. `leads` is asked before each step, so a node that stops believing
it leads sends nothing more at once; the store refuses its writes anyway (fencing). A chain started
on a node that does not lead is only stored: the leader's `reconcile` takes it within a tick.

A practitioner's SMS refusal (callrouter.escalation.ack) calls `declined()`: the chain is read
again at once and moves on without them. A key pressed in an alert call is recorded by the voice
channel, which reports the accepted acknowledgement with the step's outcome: the chain stops as
for any other acknowledgement.

The engine knows the store and the channels only through callrouter.escalation.ports (a
`ChainStore`, channels by name); callrouter.app hands it the real ones.

Time comes from the injected clock; blocking store calls go through `run_blocking` (the reactor's
thread pool in the daemon, a synchronous call in tests).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.task import deferLater

from callrouter.domain import escalation as chain
from callrouter.domain.call import mask_number
from callrouter.domain.escalation_views import EscalationView, UnknownEscalation
from callrouter.domain.model import Dialplan, EscalationTier
from callrouter.domain.sms_reply import reference
from callrouter.escalation import tokens
from callrouter.escalation.duty import DutyAlerts, EscalationEvents
from callrouter.escalation.messages import Message, compose
from callrouter.escalation.metrics import EscalationMetrics
from callrouter.escalation.ports import ChainStore, Channel, ChannelError, ProviderId
from callrouter.escalation.settings import EscalationSettings
from callrouter.escalation.voice import call_message
from callrouter.ports import RunBlocking, utc_from_clock

logger = logging.getLogger(__name__)

# Waits before storing again a chain the database could not take (the last one repeats).
START_RETRY_S = (1.0, 2.0, 5.0, 10.0)

# Channel used when a step's own channel is not configured: without `escalation.voice_calls` (or
# a media plane) a `call` step goes out as an SMS to the same phone.
FALLBACKS = {"call": "sms"}


__all__ = ["EscalationEngine", "EscalationEvents", "FALLBACKS"]


@dataclass(eq=False)
class _Chain:
    id: int
    dialplan: Dialplan
    tier: EscalationTier
    timer: Any = None
    running: "defer.Deferred[None] | None" = None
    wakeups: int = field(default=0)


class EscalationEngine(Service):
    name = "escalation"

    def __init__(self, repo: ChainStore, channels: Mapping[str, Channel],
                 dialplan_for: Callable[[str], Dialplan | None], settings: EscalationSettings,
                 clock: Any, metrics: EscalationMetrics, run_blocking: RunBlocking,
                 events: EscalationEvents | None = None, leads: Callable[[], bool] | None = None) -> None:
        self._repo = repo
        self._channels = dict(channels)
        self._dialplan_for = dialplan_for
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._run = run_blocking
        self._chains: dict[int, _Chain] = {}
        self._leads = leads or (lambda: True)  # this node leads now (callrouter.cluster)
        self._duty = DutyAlerts(repo, self._channels, dialplan_for, settings, metrics, run_blocking, self._now,
                                events, self._holds)

    # --- service ---------------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        for channel in self._services():  # channels holding a connection (the SMPP bind)
            channel.startService()
        self.ready = self._resume()

    def stopService(self):  # also when the node loses the lead: nothing more is sent from here
        super().stopService()
        for c in self._chains.values():
            if c.timer is not None and c.timer.active():
                c.timer.cancel()
        self._chains.clear()
        stopping = [defer.maybeDeferred(channel.stopService) for channel in self._services()]
        return defer.DeferredList(stopping) if stopping else None

    def follow(self, settings: EscalationSettings) -> None:
        """A settings reload: each sender takes the new gateway, relay or SMSC settings for its next
        message (callrouter.settings_diff makes it live only while the kinds of channel stay)."""
        for channel in {id(c): c for c in self._channels.values()}.values():
            follow = getattr(channel, "follow", None)
            if follow is not None:
                follow(settings)

    def _services(self) -> list[Any]:
        unique = {id(c): c for c in self._channels.values()}.values()
        return [c for c in unique if hasattr(c, "startService") and hasattr(c, "stopService")]

    @defer.inlineCallbacks
    def _resume(self):
        """Every chain left active by the previous run continues where it was."""
        interrupted = yield self._run(self._repo.mark_interrupted_sends)
        if interrupted:
            logger.warning("%d escalation step(s) were being sent when the previous run stopped: "
                           "marked unknown, not re-sent", interrupted)
        views = yield self._run(self._repo.active)
        for view in views:
            yield self._take(view)
        yield self._duty.send_pending(None)  # duty alerts stored by a run that stopped before sending them

    @defer.inlineCallbacks
    def reconcile(self):
        """On the leading node, every tick: take the chains other nodes started, and read every chain
        again (an acknowledgement or a refusal another node recorded is seen)."""
        views = yield self._run(self._repo.active)
        for escalation_id in set(self._chains) - {v.id for v in views}:  # ended elsewhere: it reads so
            self._advance(escalation_id)
        for view in views:
            if self._holds():
                yield self._advance(view.id) if view.id in self._chains else self._take(view, cancel=False)

    def _take(self, view: EscalationView, cancel: bool = True) -> "defer.Deferred[Any] | None":
        if view.id in self._chains:
            return None
        dialplan = self._dialplan_for(view.practice)
        tier = dialplan.escalation.get(view.tier) if dialplan else None
        if tier is None and not cancel:  # started by a node whose dialplans this one has not reloaded yet
            logger.warning("escalation %s (%s/%s): no such practice or tier here yet; taken when there is",
                           view.id, view.practice, view.tier)
            return None
        if tier is None:
            logger.error("escalation %s (%s/%s) cannot resume: no such practice or tier now; cancelled",
                         view.id, view.practice, view.tier)
            return self._run(self._repo.finish, view.id, chain.CANCELLED, self._now())
        logger.info("escalation %s (%s/%s) resumed", view.id, view.practice, view.tier)
        self._chains[view.id] = _Chain(view.id, dialplan, tier)
        self._advance(view.id)
        return None

    def _holds(self) -> bool:
        return bool(self.running) and self._leads()

    # --- API for the controller and the acknowledgement paths --------------------------------------

    def now(self) -> dt.datetime:
        return self._now()

    def _now(self) -> dt.datetime:
        return utc_from_clock(self._clock)

    def start(self, call_id: str | None, dialplan: Dialplan, tier_name: str,
              caller: str | None, triggered_by: str | None = None,
              note: str | None = None, retry: bool = False) -> "defer.Deferred[int | None]":
        """Start the tier's chain for a call; fires with the escalation id (None: no such tier).

        The IVR starts chains without `triggered_by`; the console passes "user:<name>" and may add
        a short `note` (sent by e-mail only, never by SMS). With `retry` (the IVR's chains: nobody
        is there to try again), a chain the store could not take (the database down) is tried
        again after START_RETRY_S, growing, for as long as the engine runs; its start time stays
        the patient's request. Without it (the console), the failure reaches the caller at once."""
        tier = dialplan.escalation.get(tier_name)
        if tier is None:
            logger.error("call %s: practice %s has no escalation tier %s", call_id, dialplan.practice, tier_name)
            return defer.succeed(None)
        asked_at = self._now()

        def create(attempt: int) -> "defer.Deferred[EscalationView]":
            d = self._run(self._repo.create, call_id, dialplan.practice, tier_name, caller, asked_at,
                          dialplan.version, triggered_by, note)
            if retry:
                d.addErrback(again, attempt)
            return d

        def again(failure: Any, attempt: int) -> "defer.Deferred[EscalationView]":
            delay = START_RETRY_S[min(attempt, len(START_RETRY_S) - 1)]
            logger.error("escalation for call %s (%s/%s) not stored yet, tried again in %.0f s: %s", call_id,
                         dialplan.practice, tier_name, delay, failure.getErrorMessage())
            self._metrics.start_retries.labels(dialplan.practice, tier_name).inc()
            return deferLater(self._clock, delay, create, attempt + 1)

        def started(view: EscalationView) -> int:
            self._metrics.started.labels(dialplan.practice, tier_name).inc()
            logger.warning("escalation %s started: call %s, %s/%s, caller %s", view.id, call_id,
                           dialplan.practice, tier_name, mask_number(caller))
            if self.running and view.id not in self._chains:  # else the leading node takes it
                self._chains[view.id] = _Chain(view.id, dialplan, tier)
                self._advance(view.id)
            return view.id

        d = create(0)
        d.addCallback(started)
        d.addErrback(self._log_failure, f"escalation for call {call_id} could not start")
        return d

    def escalate(self, session: Any, tier: str) -> None:
        """The controller's `escalate(session, tier)` callback: session has call_id, dialplan and
        call.caller. Fire and forget: failures are logged, the call goes on, and a chain the
        database could not take yet is tried again until it is stored."""
        if session.dialplan is None:
            logger.error("call %s: escalation %s requested without a dialplan", session.call_id, tier)
            return
        self.start(session.call_id, session.dialplan, tier, getattr(session.call, "caller", None), retry=True)

    def acknowledged(self, view: EscalationView) -> None:
        """Told (on the reactor thread) that the store accepted an acknowledgement: stop now."""
        if view.outcome == chain.ACKNOWLEDGED:  # not a late ack of an exhausted chain
            self._metrics.acknowledged.labels(view.practice, view.tier).inc()
            if view.ack_delay_s is not None:
                self._metrics.ack_delay.labels(view.practice, view.tier).observe(view.ack_delay_s)
        logger.info("escalation %s acknowledged by %s via %s after %.0f s", view.id, view.acknowledged_by,
                    view.acknowledged_via, view.ack_delay_s or 0)
        c = self._chains.pop(view.id, None)
        if c is not None and c.timer is not None and c.timer.active():
            c.timer.cancel()
        stop_call = getattr(self._channels.get("call"), "chain_stopped", None)
        if stop_call is not None:  # an alert call ringing for this chain stops
            stop_call(view.id)

    def declined(self, escalation_id: int) -> None:
        """Told (on the reactor thread) that a practitioner declined: the chain moves on now."""
        if escalation_id in self._chains:
            self._advance(escalation_id)

    def answer_sms(self, to: str, text: str) -> "defer.Deferred[None]":
        """The automatic answer to a practitioner's SMS reply (not stored: a lost one is only a
        missing hint, and the practitioner can reply again)."""
        channel = self._channels.get("sms")
        if channel is None:
            logger.warning("no SMS channel: the answer to %s is not sent", mask_number(to))
            return defer.succeed(None)
        # Its own idempotency key: two answers must never look like one to a gateway.
        message = Message("sms", to, "", text, f"reply-{uuid.uuid4().hex}")
        d = defer.maybeDeferred(channel.send, message)
        d.addCallbacks(lambda _: logger.info("answer sent to %s", mask_number(to)),
                       lambda f: logger.warning("answer to %s not sent: %s", mask_number(to), f.getErrorMessage()))
        return d

    def settled(self, escalation_id: int) -> "defer.Deferred[None]":
        """Fires when the chain's current burst of work is over (it waits, or it ended)."""
        c = self._chains.get(escalation_id)
        if c is None or c.running is None:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        c.running.addBoth(lambda r: (d.callback(None), r)[1])
        return d

    def active_ids(self) -> list[int]:
        return sorted(self._chains)

    # --- the chain loop --------------------------------------------------------------------------

    def _advance(self, escalation_id: int) -> None:
        c = self._chains.get(escalation_id)
        if c is None or c.running is not None:
            return
        if c.timer is not None and c.timer.active():
            c.timer.cancel()
        c.timer = None
        c.running = marker = defer.Deferred()  # set before the work: no second worker meanwhile

        def done(_):
            c.running = None
            marker.callback(None)

        work = self._work(c)
        work.addErrback(lambda f: self._log_failure(f, f"escalation {escalation_id} stalled") if self._holds()
                        else logger.info("escalation %s left to the leading node", escalation_id))
        work.addBoth(done)

    @defer.inlineCallbacks
    def _work(self, c: _Chain):
        """Run the chain until it must wait or ends; bounded by its number of steps."""
        for _ in range(chain.max_sends(c.tier) + 2):
            if not self._holds() or self._chains.get(c.id) is not c:
                return  # not leading any more (or the chain ended meanwhile): the leader goes on
            try:
                view = yield self._run(self._repo.get, c.id)
            except UnknownEscalation:
                self._chains.pop(c.id, None)
                return
            now = self._now()
            nxt = chain.next_step(c.tier, c.dialplan, view.chain_state(), now)
            if isinstance(nxt, chain.Done):
                self._chains.pop(c.id, None)
                if nxt.outcome == chain.ACKNOWLEDGED:
                    return
                alerts = self._duty.contacts() if nxt.outcome == chain.EXHAUSTED else ()
                finished = yield self._run(self._repo.finish, c.id, nxt.outcome, now, alerts)
                if finished and nxt.outcome == chain.EXHAUSTED:
                    yield self._duty.exhausted(c.id, alerts)
                return
            if isinstance(nxt, chain.Wait):
                delay = max(0.0, (nxt.until - now).total_seconds())
                if self._chains.get(c.id) is c:
                    c.timer = self._clock.callLater(delay, self._advance, c.id)
                return
            if isinstance(nxt, chain.Skip):
                logger.warning("escalation %s round %s step %s (%s) skipped: %s", c.id, nxt.round,
                               nxt.index, nxt.channel, nxt.reason)
                yield self._run(self._repo.claim_step, c.id, nxt.round, nxt.index, nxt.channel,
                                nxt.practitioner, None, now, "skipped", nxt.reason)
                self._metrics.step_skipped(nxt.channel)
                continue
            yield self._send(c, view, nxt, now)
        logger.error("escalation %s: loop bound reached", c.id)  # pragma: no cover - a bug

    @defer.inlineCallbacks
    def _send(self, c: _Chain, view: EscalationView, step: chain.Send, now: dt.datetime):
        kind = step.channel
        if kind not in self._channels and kind in FALLBACKS and FALLBACKS[kind] in self._channels:
            # Voice calls off: a `call` step goes out as an SMS to the same phone, so the
            # practitioner is reached and the step's wait still applies (failing it would exhaust
            # a typical sms/call/call chain within a second).
            logger.info("escalation %s round %s step %s: no %s channel, sent as %s", c.id, step.round,
                        step.index, kind, FALLBACKS[kind])
            kind = FALLBACKS[kind]
        claimed = yield self._run(self._repo.claim_step, c.id, step.round, step.index, kind,
                                  step.practitioner, step.destination, now)
        if not claimed:
            logger.info("escalation %s round %s step %s already claimed: not sent again", c.id,
                        step.round, step.index)
            return
        if not self._holds():  # the lead was lost meanwhile: the next leader reads it as unknown
            return
        channel = self._channels.get(kind)
        token = tokens.sign(self._settings.ack_secret or "", c.id, step.round, step.index)
        message = compose(kind, step.destination, f"esc-{c.id}-{step.round}-{step.index}",
                          view.tier, c.dialplan.name, view.caller,
                          f"{self._settings.public_url.rstrip('/')}/ack/{token}", note=view.note,
                          reference=reference(c.id))
        if kind == "call":  # what the call says, and what a key pressed acknowledges
            message = call_message(message, c.id, step.practitioner, view.practice, c.dialplan.name,
                                   view.tier, view.caller, view.call_id)
        try:
            if channel is None:
                raise ChannelError(f"no {kind} channel configured")
            provider_id = yield channel.send(message)
        except Exception as exc:  # ChannelError, or a channel's bug: either way, move on
            self._metrics.step_failed(view.practice, view.tier, kind)
            logger.warning("escalation %s round %s step %s: %s to %s (%s) failed: %s; next step now",
                           c.id, step.round, step.index, kind, step.practitioner,
                           mask_number(step.destination), exc)
            yield self._run(self._repo.mark_failed, c.id, step.round, step.index, str(exc), self._now())
            return
        if isinstance(provider_id, ProviderId) and provider_id.acknowledged is not None:
            self.acknowledged(provider_id.acknowledged)  # a key pressed in an alert call, stored
        outcome = provider_id.outcome if isinstance(provider_id, ProviderId) else None
        logger.info("escalation %s round %s step %s: %s sent to %s (%s)%s", c.id, step.round, step.index,
                    kind, step.practitioner, mask_number(step.destination), f": {outcome}" if outcome else "")
        yield self._run(self._repo.mark_sent, c.id, step.round, step.index,
                        None if provider_id is None else str(provider_id), self._now(), outcome)
        self._metrics.step_sent(kind, outcome)
        if isinstance(provider_id, ProviderId) and provider_id.delivered:  # a key pressed in an alert call
            yield self._run(self._repo.mark_delivered, str(provider_id))

    @staticmethod
    def _log_failure(failure, what: str) -> None:
        logger.error("%s: %s", what, failure.getTraceback())

