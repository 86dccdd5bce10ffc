"""Where a call goes: the dialplan's decision carried out, the IVR menus, and the routes that end
without a secretary (voicemail, the callback-number dialogue, a forward, overflow).

`apply` records the decision (its route and reasons), asks for an escalation when its tier is new
to the call, and runs its action: an announcement, a menu (callrouter.domain.ivr: the flow plays
its prompts and feeds it digits and timeouts), the queue (callrouter.controller.offers), a
voicemail, a callback offer (callrouter.domain.callback_dialogue, played the same way), a forward
to an outside number, or a hang-up. A call that may not wait in its queue overflows: out of line,
routed by the dialplan's overflow decision.
"""

from __future__ import annotations

import itertools
import logging
from typing import Callable, MutableMapping, Protocol

from callrouter.controller.callbacks import CallbackDesk
from callrouter.controller.context import CallContext
from callrouter.controller.line import Line
from callrouter.controller.offers import Offers
from callrouter.controller.session import CallSession, State
from callrouter.domain import callback_dialogue, ivr
from callrouter.domain.call import mask_number
from callrouter.domain.decision import Decision
from callrouter.domain.model import (
    Action,
    AnnounceAction,
    CallbackOfferAction,
    EscalateAction,
    ForwardAction,
    HangupAction,
    IvrAction,
    QueueAction,
    VoicemailAction,
)
from callrouter.domain.routing import awaiting_menu, decide, overflow_decision
from callrouter.media import protocol as p

logger = logging.getLogger(__name__)


class Ends(Protocol):
    """How a call is closed (the call controller)."""

    def hangup(self, s: CallSession, outcome: str) -> None: ...

    def end(self, s: CallSession, outcome: str, hangup: bool = True, cause: str | None = None) -> None: ...


class Flow:
    def __init__(self, ctx: CallContext, line: Line, offers: Offers, callbacks: CallbackDesk, ends: Ends,
                 legs: MutableMapping[str, CallSession], escalate: Callable[[CallSession, str], None]) -> None:
        self._ctx, self._line, self._offers, self._callbacks, self._ends = ctx, line, offers, callbacks, ends
        self._legs = legs
        self._escalate = escalate
        self._seq = itertools.count(1)

    # --- decisions -------------------------------------------------------------------------------

    def apply(self, s: CallSession, decision: Decision, detail: str | None = None) -> None:
        ctx = self._ctx
        s.decision = decision
        reason = decision.reason or ""
        if decision.tier:
            reason = f"{reason}; tier {decision.tier}".lstrip("; ")
        if detail:  # e.g. why it overflowed: the record must explain the route taken
            reason = f"{reason}; {detail}".lstrip("; ")
        ctx.recorder.set_route(s.call_id, decision.route, reason, ctx.now(),
                               dialplan_version=decision.dialplan_version, why=decision.why)
        if decision.tier and s.tier_started != decision.tier and s.dialplan is not None:
            s.tier_started = decision.tier
            ctx.metrics.escalations_requested.labels(s.practice, decision.tier).inc()
            logger.warning("call %s: escalation tier %s requested for %s", s.call_id, decision.tier, s.practice)
            self._escalate(s, decision.tier)
        self._execute(s, decision.action)

    def _execute(self, s: CallSession, action: Action | None) -> None:
        ctx, hangup = self._ctx, self._ends.hangup
        match action:
            case AnnounceAction(prompt=prompt, then=then):
                s.state = State.ANNOUNCE
                s.menu_ahead = awaiting_menu(then)
                ctx.play(s, [prompt], lambda: self._execute(s, then) if then else hangup(s, s.outcome or "announced"))
            case IvrAction(menu=name):
                self._enter_menu(s, name)
            case QueueAction(queue=queue, announce=announce):
                self._with_announce(s, announce, lambda: ctx.recordings.before_queue(
                    s, lambda: self._offers.enqueue(s, queue)))
            case VoicemailAction(announce=announce):
                self._voicemail(s, announce)
            case CallbackOfferAction(announce=announce):
                self._callback_offer(s, announce)
            case ForwardAction(destination=dest, announce=announce):
                self._with_announce(s, announce, lambda: self._forward(s, dest))
            case EscalateAction():  # decide() turns these into announcements; be safe
                hangup(s, s.outcome or "announced")
            case HangupAction() | None:
                hangup(s, s.outcome or "announced")

    def _with_announce(self, s: CallSession, prompt: str | None, then: Callable[[], None]) -> None:
        if prompt:
            s.state = State.ANNOUNCE
            self._ctx.play(s, [prompt], then)
        else:
            then()

    def overflow(self, s: CallSession, cause: str) -> None:
        if s.state is State.RINGING and s.offers:
            self._offers.withdraw(s, "overflow", missed=False)
        self._line.leave(s)
        for name in ("wait_max", "announce", "ring"):
            s.timers.cancel(name)
        s.overflowed = True
        s.outcome = "overflow"
        self._ctx.metrics.overflows.labels(s.practice, cause).inc()
        logger.info("call %s overflows (%s)", s.call_id, cause)
        self.apply(s, overflow_decision(s.dialplan, s.call, self._ctx.now(), cause), detail=f"overflow on {cause}")

    # --- IVR -------------------------------------------------------------------------------------

    def _enter_menu(self, s: CallSession, name: str) -> None:
        menu = s.dialplan.ivr[name]
        s.state = State.IVR
        s.menu, prompt = ivr.enter(menu)
        self._ctx.events.call_in_ivr(s.call_id, s.practice, name)
        self._prompt_menu(s, prompt)

    def _prompt_menu(self, s: CallSession, prompt: ivr.Prompt) -> None:
        s.timers.cancel("ivr")
        self._ctx.play(s, list(prompt.prompts),
                       lambda: s.timers.start("ivr", prompt.timeout_s, lambda: self._ivr_timeout(s)))

    def announce_digit(self, s: CallSession, ev: p.Digit) -> None:
        """A caller who knows the menu may answer it during the announcement before it (the
        recording's consent message keeps its refuse key)."""
        if self._ctx.recordings.digit(s, ev.digit) or s.menu_ahead is None:
            return
        s.player.stop()
        s.state = State.IVR
        s.menu, _ = ivr.enter(s.dialplan.ivr[s.menu_ahead.menu])
        self.ivr_digit(s, ev)

    def ivr_digit(self, s: CallSession, ev: p.Digit) -> None:
        menu = s.dialplan.ivr[s.menu.menu]
        s.timers.cancel("ivr")
        s.player.stop()
        s.menu, outcome = ivr.on_digit(menu, s.menu, ev.digit)
        if ev.digit not in menu.options:  # kept on the record as pressed: the call can be explained
            s.ivr_answers.append((menu.name, ev.digit))
            self._ctx.recorder.add_ivr_answer(s.call_id, menu.name, ev.digit, self._ctx.now())
        self._ivr_outcome(s, menu.name, outcome)

    def _ivr_timeout(self, s: CallSession) -> None:
        menu = s.dialplan.ivr[s.menu.menu]
        s.menu, outcome = ivr.on_timeout(menu, s.menu)
        self._ivr_outcome(s, menu.name, outcome)

    def _ivr_outcome(self, s: CallSession, menu: str, outcome: ivr.Outcome) -> None:
        ctx = self._ctx
        ctx.metrics.ivr_outcome(s.practice, menu, outcome)
        match outcome:
            case ivr.Prompt():
                self._prompt_menu(s, outcome)
            case ivr.Chosen(digit=digit):
                s.ivr_answers.append((menu, digit))
                ctx.recorder.add_ivr_answer(s.call_id, menu, digit, ctx.now())
                s.call = s.call.with_digit(digit)
                self.apply(s, decide(s.dialplan, s.call, ctx.now()))
            case ivr.Exhausted():
                ctx.metrics.ivr_timeouts.labels(s.practice).inc()
                s.ivr_answers.append((menu, ivr.TIMEOUT))
                ctx.recorder.add_ivr_answer(s.call_id, menu, ivr.TIMEOUT, ctx.now())
                s.call = s.call.with_digit(ivr.TIMEOUT)
                self.apply(s, decide(s.dialplan, s.call, ctx.now()))

    # --- voicemail, callback, forward ---------------------------------------------------------------

    def _voicemail(self, s: CallSession, announce: str | None) -> None:
        ctx = self._ctx
        s.state = State.VOICEMAIL
        path = ctx.settings.voicemail_dir / s.practice / f"{s.call_id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)

        def record() -> None:
            s.recording_started = ctx.now()
            ctx.send(s.worker, p.Record(s.leg, str(path.resolve()), ctx.settings.voicemail_max_s,
                                        ctx.settings.voicemail_silence_s, "#"))

        ctx.play(s, [announce or "voicemail_prompt", ctx.settings.beep_prompt], record)

    def recording_finished(self, s: CallSession, ev: p.RecordingFinished) -> None:
        """The message is recorded (kept, and a task for the secretaries); the caller hears goodbye
        unless she hung up."""
        ctx = self._ctx
        self.store_message(s, ev)
        s.outcome = "voicemail"
        if ev.reason != "leg_ended":
            ctx.play(s, ["goodbye"], lambda: self._ends.hangup(s, "voicemail"))

    def store_message(self, s: CallSession, ev: p.RecordingFinished) -> None:
        """The message's callback task, then the message itself: sealed by call recording, or kept
        on the call record as it was."""
        ctx = self._ctx
        task_id = self._callbacks.create_from_voicemail(s, ev.duration)
        started = s.recording_started or ctx.now()
        if not ctx.recordings.voicemail_left(s, ev.path, started, ev.duration, task_id):
            ctx.recorder.add_recording(s.call_id, ev.path, started, ev.duration, ctx.now())

    def _callback_offer(self, s: CallSession, announce: str | None) -> None:
        s.outcome = s.outcome or "overflow"
        s.dialogue, say = callback_dialogue.offer(s.call.caller, announce)
        self._callback_said(s, say)

    def callback_key(self, s: CallSession, ev: p.Digit) -> None:
        self._callback_step(s, ev.digit)

    def _callback_step(self, s: CallSession, key: str) -> None:
        """One key (or the digit timer's end) through the callback-number dialogue."""
        ctx = self._ctx
        s.dialogue, out = callback_dialogue.step(s.dialogue, key)
        match out:
            case callback_dialogue.Say():
                s.timers.cancel("callback")
                s.player.stop()
                self._callback_said(s, out)
            case callback_dialogue.Listen():
                s.player.stop()
                s.timers.start("callback", ctx.settings.callback_digit_timeout_s,
                               lambda: self._callback_step(s, callback_dialogue.TIMEOUT))
            case callback_dialogue.GiveUp():
                s.timers.cancel("callback")
                s.player.stop()
                ctx.play(s, ["goodbye"], lambda: self._ends.hangup(s, s.outcome or "overflow"))
            case callback_dialogue.Confirmed(number=number):
                s.timers.cancel("callback")
                s.player.stop()
                self._callbacks.create_from_call(s, number)
                s.outcome = "callback_requested"
                s.state = State.ANNOUNCE
                ctx.play(s, ["callback_confirm"], lambda: self._ends.hangup(s, "callback_requested"))

    def _callback_said(self, s: CallSession, say: callback_dialogue.Say) -> None:
        s.state = _DIALOGUE_STATES[type(s.dialogue)]
        self._ctx.play(s, list(say.prompts), lambda: s.timers.start(
            "callback", self._ctx.settings.callback_digit_timeout_s,
            lambda: self._callback_step(s, callback_dialogue.TIMEOUT)))

    def _forward(self, s: CallSession, destination: str) -> None:
        ctx = self._ctx
        s.state = State.FORWARDING
        leg = f"{s.call_id[:12]}-f{next(self._seq)}"
        s.other_leg = leg
        self._legs[leg] = s
        uri = f"sip:{destination}@{ctx.settings.outbound_trunk}"
        ctx.send(s.worker, p.Dial(leg, uri, display_name=p.display_name(s.dialplan.name),
                                  headers={"X-Callrouter-Call-Id": s.call_id}))
        ctx.recorder.leg_started(s.call_id, leg, "on_call", mask_number(destination), ctx.now())
        ctx.loop(s, ctx.settings.ringback_prompt)


_DIALOGUE_STATES = {callback_dialogue.Offered: State.CALLBACK, callback_dialogue.Typing: State.CALLBACK_NUMBER,
                    callback_dialogue.Confirming: State.CALLBACK_CONFIRM, callback_dialogue.Ended: State.ANNOUNCE}
