"""Per-call orchestration: media events in, `decide()` and the IVR machine, media commands out.

Each call is a CallSession (callrouter.controller.session) with an explicit state; `handle()`
dispatches an event of its caller's leg through the table `_HANDLERS[(state, event type)]`, and an
event of a leg it dialled (a secretary's offer, a forward) to the offer or the forward. The leg
router (callrouter.controller.legs) hands it new calls and the events of the legs it registered.
The controller owns no clock of its own: timers go through the injected reactor (task.Clock in
tests). It keeps for each call the dialplan in force when the call arrived, so one call is never
routed by two versions of the rules.

The work is shared among collaborators built here on one CallContext: the line and its dispatch
(line.py), the queue and its offers (offers.py), the IVR and the routes without a secretary
(flow.py), "calls today" (counts.py) and the callback tasks (callbacks.py); the secretaries are
the desk's (desk.py). This module keeps the arrival of a call, the events of its legs, its end,
and what alert calls ask of it (`patient_worker`, `patient_busy`, `connect_practitioner`).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Callable

from callrouter.controller.callbacks import CallbackDesk, TaskStore
from callrouter.controller.context import CallContext, CallRecordingHooks, NoEvents
from callrouter.controller.counts import CallCounts
from callrouter.controller.desk import Desk
from callrouter.controller.flow import Flow
from callrouter.controller.legs import LegRouter
from callrouter.controller.line import Line
from callrouter.controller.offers import Offers
from callrouter.controller.player import PromptPlayer, SessionTimers
from callrouter.controller.session import CONNECTABLE, CallSession, State
from callrouter.controller.settings import ControllerSettings
from callrouter.controller.transfer import Transfers
from callrouter.domain.call import Call, mask_number
from callrouter.domain.decision import Decision
from callrouter.domain.routing import Router
from callrouter.media import protocol as p
from callrouter.metrics import Metrics
from callrouter.ports import MediaControl

logger = logging.getLogger(__name__)


class CallController:
    def __init__(self, reactor: Any, media: MediaControl, recorder: Any, router: Callable[[], Router],
                 prompt_path: Callable[[str, str | None], str], settings: ControllerSettings, desk: Desk,
                 legs: LegRouter, metrics: Metrics | None = None,
                 escalate: Callable[[CallSession, str], None] | None = None, events: Any = None,
                 tasks: TaskStore | None = None, returns: Callable[[str, p.IncomingCall], bool] | None = None,
                 recordings: CallRecordingHooks | None = None):
        """`desk`: the secretaries (their line's book is the desk's); `legs`: the leg router, which
        hands this controller every new call and the events of the legs it registers; `returns`:
        True for a forwarding watch's own call coming back (callrouter.watch), released there."""
        self._returns = returns or (lambda worker, ev: False)
        self.ctx = ctx = CallContext(reactor, media, recorder, prompt_path, settings, metrics or Metrics(),
                                     events if events is not None else NoEvents(), recordings)
        self._router = router
        self.desk = desk
        self.sessions = legs.owned_by(self)  # caller leg -> session
        self._other_legs = legs.owned_by(self)  # dialled leg -> session
        self.line = Line(ctx, desk.queues)
        self.counts = CallCounts(reactor, router, desk)
        self.offers = Offers(ctx, desk, self.line, self.counts, self._other_legs, self._overflow)
        self.callbacks = CallbackDesk(ctx, desk, self.line, legs, self.counts.zone, lambda: router().dialplans, tasks)
        self.flow = Flow(ctx, self.line, self.offers, self.callbacks, self, self._other_legs,
                         escalate or (lambda s, tier: None))
        self.transfers = Transfers(ctx, desk, self.line, self.counts, self.sessions, self._other_legs, self.hangup)
        legs.take_calls(self._incoming)
        desk.when_available(self.line.dispatch)

    @property
    def metrics(self) -> Metrics:
        return self.ctx.metrics

    def now(self) -> Any:
        return self.ctx.now()

    # --- events (from the leg router) -------------------------------------------------------------

    def handle(self, worker: str, event: Any) -> None:
        """One event of a leg of ours (the leg router hands new calls to `_incoming`)."""
        leg = getattr(event, "leg", "")
        s = self.sessions.get(leg)
        if s is not None:
            handler = _HANDLERS.get((s.state, type(event))) or _ANY_STATE.get(type(event))
            if handler is not None:
                handler(self, s, event)
            return
        s = self._other_legs.get(leg)
        if s is not None:
            self._other_leg_event(s, leg, event)

    def leg_lost(self, worker: str, leg: str, cause: str) -> None:
        """A leg vanished with its worker (no leg_ended will come)."""
        s = self.sessions.pop(leg, None)
        if s is not None:
            for other in s.legs:
                self._other_legs.pop(other, None)
            self.end(s, "failed", cause=cause, hangup=False)
            return
        s = self._other_legs.get(leg)
        if s is not None:
            self._other_leg_ended(s, leg, p.LegEnded(leg, 500, cause, "local"))

    def adopt(self, s: CallSession) -> None:
        """A call rebuilt from the legs a worker reported (controller/readopt.py) taken in hand."""
        self.sessions[s.leg] = s
        for leg in s.legs:
            self._other_legs[leg] = s
        self.ctx.metrics.active_calls.inc()

    def _incoming(self, worker: str, ev: p.IncomingCall) -> None:
        if self._returns(worker, ev):  # a watch call back: never a call, queued or recorded
            return
        ctx = self.ctx
        now = ctx.now()
        call_id = uuid.uuid4().hex
        call = Call(ev.number, ev.caller or None, arrived_at=now)  # its menus are those of this instant
        router = self._router()
        dialplan = router.by_number.get(ev.number)
        player = PromptPlayer(lambda command: ctx.send(worker, command), ev.leg)
        s = CallSession(call_id, worker, ev.leg, dialplan, call, player, SessionTimers(ctx.reactor), call_started=now)
        self.sessions[ev.leg] = s
        ctx.metrics.active_calls.inc()
        logger.info("call %s on %s: %s -> %s (%s)", call_id, worker, mask_number(ev.caller), ev.number,
                    dialplan.practice if dialplan else "no practice")
        ctx.recorder.open_call(call_id, s.practice, ev.number, ev.caller or None, now, worker)
        ctx.recorder.set_caller_leg(call_id, ev.leg)  # a later controller re-adopts the call by it
        ctx.events.call_arrived(call_id, s.practice, ev.caller or None,
                                site=dialplan.number_sites.get(ev.number) if dialplan else None)
        if dialplan is not None and ev.caller:
            self.counts.count(call_id, dialplan.practice, ev.caller, now)
        decision = router.decide(call, now)
        if decision.reject is not None:
            self._reject(s, decision)
            return
        ctx.send(worker, p.Answer(ev.leg))
        ctx.recorder.ivr_answered(call_id, now)
        self.flow.apply(s, decision)

    def _reject(self, s: CallSession, decision: Decision) -> None:
        """Refuse the call with the decision's SIP code, before any 200 (an answered call is billed)."""
        s.decision = decision
        self.ctx.recorder.set_route(s.call_id, decision.route, "; ".join(decision.why), self.ctx.now(),
                                    dialplan_version=decision.dialplan_version, why=decision.why)
        self.ctx.send(s.worker, p.Hangup(s.leg, decision.reject))
        self.end(s, "rejected", hangup=False, cause=decision.status)

    def _other_leg_event(self, s: CallSession, leg: str, ev: Any) -> None:
        if isinstance(ev, p.LegState) and ev.state == "confirmed":
            if self.transfers.answered(s, leg):
                return
            if (s.state is State.RINGING and leg in s.offers) or (s.state is State.FORWARDING and leg == s.other_leg):
                self.offers.connected(s, leg)
        elif isinstance(ev, p.LegEnded):
            self._other_leg_ended(s, leg, ev)

    def _overflow(self, s: CallSession, cause: str) -> None:
        self.flow.overflow(s, cause)

    # --- endings ----------------------------------------------------------------------------------

    def _other_leg_ended(self, s: CallSession, leg: str, ev: p.LegEnded) -> None:
        ctx = self.ctx
        if self.transfers.leg_ended(s, leg, f"{ev.code} {ev.reason}".strip()):
            return
        if leg in s.offers:
            # A dial our own worker could not place (no call slot left) is not her missed call:
            # the call waits a moment before the next offer instead of going round at once.
            ours = ev.by == "worker"
            self.offers.offer_ended(s, leg, f"{ev.code} {ev.reason}".strip(),
                                    missed=ev.code in p.MISSED_CODES and not ours, hold_back=ours)
            return
        if leg != s.other_leg:
            return
        if s.state is State.BRIDGED:
            self._other_legs.pop(leg, None)
            ctx.recorder.leg_ended(leg, f"{ev.code} {ev.reason}".strip(), ctx.now())
            s.other_leg = None
            wrap_up = s.dialplan.queues[s.waiting.queue].wrap_up_s if s.waiting else 0
            self.desk.free(s.secretary, wrap_up)
            s.secretary = None
            self.hangup(s, "answered")
        elif s.state is State.FORWARDING:
            self._other_legs.pop(leg, None)
            s.other_leg = None
            ctx.recorder.leg_ended(leg, f"{ev.code}", ctx.now())
            s.outcome = "failed"
            ctx.play(s, ["overflow_message"], lambda: self.end(s, "failed", cause=f"forward_failed_{ev.code}"))

    def _caller_ended(self, s: CallSession, ev: p.LegEnded) -> None:
        awaiting_recording = s.state is State.VOICEMAIL and s.recording_started is not None
        if awaiting_recording:
            outcome = "voicemail"
        elif s.state is State.BRIDGED:
            outcome = "answered"
        elif s.outcome in ("callback_requested", "voicemail", "answered"):
            outcome = s.outcome
        else:
            outcome = "abandoned"
        self.end(s, outcome, hangup=False)
        if not awaiting_recording:  # else recording_finished, still to come, forgets the session
            self.sessions.pop(s.leg, None)

    def hangup(self, s: CallSession, outcome: str) -> None:
        self.end(s, outcome, hangup=True)

    def end(self, s: CallSession, outcome: str, hangup: bool = True, cause: str | None = None) -> None:
        """Close the call once: timers, queue place, the other leg, the secretary, the record."""
        if s.state is State.ENDED:
            return
        ctx = self.ctx
        state_before = s.state
        s.state = State.ENDED
        s.timers.close()
        self.transfers.call_ended(s)
        self.line.leave(s)
        for leg in s.legs:
            ctx.send(s.worker, p.Hangup(leg, 487))
            self._other_legs.pop(leg, None)
            ctx.recorder.leg_ended(leg, cause or "caller_ended", ctx.now())
        for secretary in s.offers.values():
            self.desk.free(secretary, wrap_up=0)
        s.offers.clear()
        s.other_leg = None
        if state_before is State.BRIDGED:
            self.offers.handled(s)
        if s.secretary is not None:
            wrap_up = s.dialplan.queues[s.waiting.queue].wrap_up_s if (s.waiting and state_before is State.BRIDGED) else 0
            self.desk.free(s.secretary, wrap_up)
            s.secretary = None
        if hangup:
            ctx.send(s.worker, p.Hangup(s.leg, 480))
        ctx.recorder.close_call(s.call_id, outcome, ctx.now(), cause)
        ctx.recordings.ended(s)
        ctx.events.call_ended(s.call_id, s.practice or "unknown", outcome, cause)
        ctx.metrics.calls.labels(s.practice or "unknown", outcome).inc()
        ctx.metrics.active_calls.dec()
        logger.info("call %s ended: %s%s", s.call_id, outcome, f" ({cause})" if cause else "")

    def _forget(self, s: CallSession, ev: Any) -> None:
        """The caller leg's end after we hung up ourselves."""
        self.sessions.pop(s.leg, None)

    def _late_recording(self, s: CallSession, ev: p.RecordingFinished) -> None:
        """The caller hung up while recording: store the message, then forget the call."""
        self.flow.store_message(s, ev)
        self.sessions.pop(s.leg, None)

    def _media_error(self, s: CallSession, ev: p.Error) -> None:
        """A prompt that cannot be played (missing file) must not leave the caller stuck: go on as
        if it had been played."""
        logger.error("call %s: media error on %s: %s", s.call_id, ev.command, ev.message)
        s.player.failed(ev.command)

    # --- alert calls: a practitioner connected to a live patient ------------------------------------
    # For callrouter.controller.alerts (the escalation's voice channel): its LivePatients port.

    def _alert_patient(self, call_id: str) -> CallSession | None:
        return next((s for s in self.sessions.values() if s.call_id == call_id and s.state in CONNECTABLE), None)

    def patient_busy(self, call_id: str) -> bool:
        """The patient of `call_id` is still on the line but with someone (a secretary, a forward,
        the voicemail): not to be called back now."""
        return any(s.call_id == call_id and s.state not in CONNECTABLE and s.state is not State.ENDED
                   for s in self.sessions.values())

    def patient_worker(self, call_id: str) -> str | None:
        """The worker of call `call_id` while its patient could be connected to a practitioner
        (still on the line, talking to nobody): the alert call is dialled from it."""
        s = self._alert_patient(call_id)
        return s.worker if s is not None else None

    def connect_practitioner(self, call_id: str, worker: str, leg: str) -> bool:
        """Bridge the practitioner's answered leg `leg` (dialled on `worker`) with the patient of
        `call_id`; the leg becomes the call's other leg (this controller owns it from now on), so
        when either hangs up both are. False when the patient left, talks to someone, or is on
        another worker."""
        s = self._alert_patient(call_id)
        if s is None or s.worker != worker:
            return False
        ctx = self.ctx
        s.timers.cancel_all()
        self.line.leave(s)
        s.player.forget()
        s.state = State.BRIDGED  # first: offers withdrawn below must not put the call back in line
        for other in list(s.offers):
            ctx.send(s.worker, p.Hangup(other, 487))
            self.offers.offer_ended(s, other, "practitioner_connected")
        s.waiting = None  # a practitioner's talk is not a secretary's handling time
        s.other_leg = leg
        self._other_legs[leg] = s
        ctx.send(s.worker, p.Bridge(s.leg, leg))
        s.bridged_at = ctx.seconds()
        s.outcome = "answered"
        ctx.recorder.leg_started(s.call_id, leg, "on_call", None, ctx.now())
        logger.info("call %s: connected to the practitioner its escalation alerted", s.call_id)
        return True


def _ignore(c: CallController, s: CallSession, ev: Any) -> None:
    """An event that changes nothing in this state."""


_HANDLERS: dict[tuple[State, type], Callable[[CallController, CallSession, Any], None]] = {
    (State.IVR, p.Digit): lambda c, s, ev: c.flow.ivr_digit(s, ev),
    (State.ANNOUNCE, p.Digit): lambda c, s, ev: c.flow.announce_digit(s, ev),
    (State.CALLBACK, p.Digit): lambda c, s, ev: c.flow.callback_key(s, ev),
    (State.CALLBACK_NUMBER, p.Digit): lambda c, s, ev: c.flow.callback_key(s, ev),
    (State.CALLBACK_CONFIRM, p.Digit): lambda c, s, ev: c.flow.callback_key(s, ev),
    # While waiting, ringing or talking, the caller may still refuse the recording with its key.
    (State.QUEUED, p.Digit): lambda c, s, ev: c.ctx.recordings.digit(s, ev.digit),
    (State.RINGING, p.Digit): lambda c, s, ev: c.ctx.recordings.digit(s, ev.digit),
    (State.BRIDGED, p.Digit): lambda c, s, ev: c.ctx.recordings.digit(s, ev.digit),
    (State.VOICEMAIL, p.RecordingFinished): lambda c, s, ev: c.flow.recording_finished(s, ev),
    (State.ENDED, p.RecordingFinished): CallController._late_recording,
    (State.ENDED, p.LegEnded): CallController._forget,
    (State.ENDED, p.PlaybackFinished): _ignore,
}
_ANY_STATE: dict[type, Callable[[CallController, CallSession, Any], None]] = {
    p.PlaybackFinished: lambda c, s, ev: s.player.finished(),
    p.Error: CallController._media_error,
    p.LegEnded: CallController._caller_ended,
}
