"""Callback tasks in the ACD: a patient asked to be called back and keeps her place in line.

A task waits in the same line as calls (QueueBook), at the place of the call it came from, so it is
offered to a secretary when the caller would have reached one, ahead of calls that arrived later.
Offering it rings the secretary first ("Rappel - <practice>", the practice card on her screen);
when she answers she hears a short notice while the patient is dialled from the same media worker.
A task is done only when a person was reached: when the patient's line answers she hears « tapez 1
pour être mis en relation », and only her 1 bridges the two and marks the task done, linked to that
outbound leg (a secretary who reached her another way marks it done through the API).

- No 1 within `callback_confirm_s` (a voicemail or an answering machine took the call): a failed
  attempt, handled like no answer below.

- The secretary does not answer: a missed offer, like a call; the task keeps its place.
- The patient does not answer (or is busy): the attempt is recorded, the secretary told, and the
  task comes back in line after `callback_retry_s`, at most `callback_attempts` times; after that it
  stays open in the API for a secretary to handle.
- It expires at its deadline: out of the line, state `expired` in the store.

Store writes go through the recorder's ordered, retried background queue; the task's id is made
here, so nothing waits for the database. Tasks pending in the store are put back in line at start.

The desk shares with calls the line (callrouter.controller.line: it offers the tasks it serves),
the secretaries (the SecretaryDesk port) and the media plane (through the leg router: it owns the
legs it dials); it prompts and times through PromptPlayer and SessionTimers.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import uuid
from typing import Any, Callable, Iterable, Mapping

from callrouter.controller.context import CallContext
from callrouter.controller.counts import aware as _aware
from callrouter.controller.legs import LegRouter
from callrouter.controller.line import Line
from callrouter.controller.player import PromptPlayer, SessionTimers
from callrouter.controller.task_session import TaskSession, TaskStore
from callrouter.domain.callback_dialogue import callable_number
from callrouter.domain.call import mask_number
from callrouter.domain.model import Dialplan
from callrouter.domain.serving import Secretary, Waiting
from callrouter.media import protocol as p
from callrouter.ports import SecretaryDesk, SecretaryStateError

logger = logging.getLogger(__name__)

__all__ = ["CallbackDesk", "TaskSession", "TaskStore"]


class CallbackDesk:
    def __init__(self, ctx: CallContext, desk: SecretaryDesk, line: Line, legs: LegRouter,
                 zone: Callable[[str], dt.tzinfo], dialplans: Callable[[], Mapping[str, Dialplan]],
                 store: TaskStore | None) -> None:
        """`zone(practice)`: the practice's time zone; `dialplans()`: those in force now."""
        self._ctx, self._desk, self._line = ctx, desk, line
        self._zone, self._dialplans = zone, dialplans
        self.store = store
        self.tasks: dict[str, TaskSession] = {}
        self._legs = legs.owned_by(self)
        self._seq = itertools.count(1)
        line.serve(TaskSession, self.offer)

    def _task(self, task_id: str, dialplan: Dialplan, queue: str, number: str, call_id: str | None,
              expires_at: dt.datetime, attempts: int = 0) -> TaskSession:
        send = lambda command: self._ctx.send(None, command)  # noqa: E731 - its legs are known to the pool
        return TaskSession(task_id, dialplan, queue, number, call_id, expires_at, SessionTimers(self._ctx.reactor),
                           PromptPlayer(send, ""), PromptPlayer(send, ""), attempts=attempts)

    # --- creating and queueing -----------------------------------------------------------------------

    def create_from_call(self, s: Any, number: str) -> TaskSession:
        """The caller confirmed `number`: a task keeping her place (the time she joined the line)."""
        ctx = self._ctx
        now = ctx.now()
        queue = s.queue_name or next(iter(s.dialplan.queues), "")
        place = s.waiting.enqueued_at if s.waiting is not None else ctx.seconds()
        expires = now + dt.timedelta(seconds=ctx.settings.callback_expiry_s)
        t = self._task(uuid.uuid4().hex, s.dialplan, queue, number, s.call_id, expires)
        self._write("create", t.practice, number, "overflow", now, expires, task_id=t.task_id,
                    place_at=_utc(place), queue=queue, call_id=s.call_id)
        logger.info("call %s: callback task %s for %s", s.call_id, t.task_id, mask_number(number))
        ctx.metrics.callback_tasks.labels(t.practice, "created_overflow").inc()
        self.enqueue(t, place)
        return t

    def create_from_voicemail(self, s: Any, duration: float) -> str | None:
        """A message was left: a task for the secretaries to call back (listed in the API, called
        from the console, not put in line: they listen to the message first). None when the
        message is empty or the caller's number cannot be called back."""
        number = callable_number(s.call.caller)
        if number is None or duration < MIN_MESSAGE_S or s.dialplan is None:
            return None
        ctx = self._ctx
        now = ctx.now()
        task_id = uuid.uuid4().hex
        self._write("create", s.practice, number, "voicemail", now,
                    now + dt.timedelta(seconds=ctx.settings.callback_expiry_s), task_id=task_id,
                    place_at=s.call_started or now, queue=s.queue_name, call_id=s.call_id)
        ctx.metrics.callback_tasks.labels(s.practice, "created_voicemail").inc()
        return task_id

    def restore(self, tasks: Iterable[Any], dialplans: Mapping[str, Dialplan] | None = None) -> int:
        """Put back in line the tasks pending in the store (at start-up), or those a lost node's
        callers became on this node (callrouter.cluster.reaper), each at its place."""
        n, dialplans = 0, self._dialplans() if dialplans is None else dialplans
        for view in tasks:
            dialplan = dialplans.get(view.practice)
            if view.id in self.tasks or dialplan is None or view.source not in IN_LINE:
                continue
            if view.attempts >= self._ctx.settings.callback_attempts:
                continue  # left to the secretaries through the API
            queue = view.queue if view.queue in dialplan.queues else next(iter(dialplan.queues), None)
            if queue is None:
                continue
            t = self._task(view.id, dialplan, queue, view.number, view.call_id, _aware(view.expires_at),
                           attempts=view.attempts)
            self.enqueue(t, _aware(view.place_at).timestamp())
            n += 1
        if n:
            logger.info("%d callback task(s) back in line", n)
            self._line.dispatch()
        return n

    def enqueue(self, t: TaskSession, place: float) -> None:
        q = t.dialplan.queues[t.queue]
        self.tasks[t.task_id] = t
        t.state = "queued"
        t.waiting = self._line.queues.enqueue(t, t.practice, t.queue, q.priority, place,
                                              line=q.line or f"{t.practice}/{t.queue}", strategy=q.strategy,
                                              zone=self._zone(t.practice))
        delay = (t.expires_at - self._ctx.now()).total_seconds()
        t.timers.start("expiry", max(0.0, delay), lambda: self._expire(t))
        self._line.changed(t.practice, t.queue)

    def _expire(self, t: TaskSession) -> None:
        if t.state not in ("queued", "waiting_retry"):
            return  # being called now: let it finish
        self._line.queues.remove(t)
        self._forget(t)
        self._write("expire_due", self._ctx.now())
        self._ctx.metrics.callback_tasks.labels(t.practice, "expired").inc()
        logger.info("callback task %s expired", t.task_id)
        self._line.changed(t.practice, t.queue)

    # --- offering it to a secretary --------------------------------------------------------------------

    def offer(self, w: Waiting, secretaries: list[Secretary]) -> None:
        """Its turn in line: one secretary at a time is rung for a task."""
        t: TaskSession = w.session
        self._line.queues.remove(t)
        if not self._ring(t, secretaries[0]):  # no media capacity now: back in line shortly, same place
            t.state = "waiting_retry"
            t.timers.start("retry", 5.0, lambda: self._back_in_line(t))

    def call_now(self, view: Any, who: str) -> TaskSession:
        """A secretary calls a task back now from her console (any task, e.g. one from a voicemail
        or typed by a colleague): her phone rings first, then the patient's. Raises
        SecretaryStateError when she or the task cannot (on a call, softphone off, task under way)."""
        secretary = self._desk.secretary(who)
        if secretary.busy:
            raise SecretaryStateError(f"{secretary.id} is {secretary.state}: finish the current call first")
        if secretary.username is not None and not secretary.registered:
            raise SecretaryStateError(f"{secretary.id}'s softphone is not registered")
        t = self.tasks.get(view.id)
        if t is None:
            dialplan = self._dialplans().get(view.practice)
            if dialplan is None or not dialplan.queues:
                raise SecretaryStateError(f"practice {view.practice} has no dialplan loaded")
            queue = view.queue if view.queue in dialplan.queues else next(iter(dialplan.queues))
            t = self._task(view.id, dialplan, queue, view.number, view.call_id, _aware(view.expires_at),
                           attempts=view.attempts)
        elif t.state not in ("queued", "waiting_retry"):
            raise SecretaryStateError(f"task {view.id} is being called already")
        self._line.queues.remove(t)
        t.timers.cancel("retry")
        if not self._ring(t, secretary):
            raise SecretaryStateError("no media capacity to place the call now; try again in a moment")
        return t

    def _ring(self, t: TaskSession, secretary: Secretary) -> bool:
        ctx = self._ctx
        worker = ctx.media.pick(2)
        if worker is None:
            return False
        t.worker, t.state, t.secretary = worker, "ringing", secretary
        t.tried.add(secretary.uri)
        leg = f"t{t.task_id[:11]}-s{next(self._seq)}"
        t.secretary_leg = t.player.leg = leg
        self._legs[leg] = t
        console = f"{ctx.settings.console_url}/practices/{t.practice}?task={t.task_id}"
        pop = dict(dialplan=t.dialplan, call_id=t.call_id or t.task_id, caller=t.number, calls_today=0, site=None,
                   queue=t.queue, reason="rappel demandé", tier=None, ivr_answers=[], console_url=console)
        self._desk.ringing(secretary, pop)
        ctx.send(worker, p.Dial(leg, secretary.uri, display_name=p.display_name(f"Rappel - {t.dialplan.name}"),
                                    headers={"X-Callrouter-Task-Id": t.task_id, "X-Callrouter-Practice": t.practice,
                                             "X-Callrouter-Reason": "rappel",
                                             "Call-Info": f"<{console}>;purpose=info"},
                                    timeout_seconds=ctx.settings.ring_timeout_s + 5))
        self._line.changed(t.practice, t.queue)
        t.timers.start("ring", ctx.settings.ring_timeout_s, lambda: self._ring_timeout(t))
        ctx.metrics.callback_tasks.labels(t.practice, "offered").inc()
        return True

    def _ring_timeout(self, t: TaskSession) -> None:
        if t.state == "ringing" and t.secretary_leg:
            self._ctx.send(t.worker, p.Hangup(t.secretary_leg, 487))
            self._offer_failed(t, missed=True)

    def _offer_failed(self, t: TaskSession, missed: bool, hold_back: bool = False) -> None:
        t.timers.cancel("ring")
        self._legs.pop(t.secretary_leg or "", None)
        t.secretary_leg = None
        secretary, t.secretary = t.secretary, None
        if secretary is not None:
            if hold_back:
                t.tried.discard(secretary.uri)
            if missed:
                self._desk.missed(secretary)
            self._desk.free(secretary, wrap_up=0)
        covering = self._line.queues.covering(t.practice, t.queue, t.waiting.line if t.waiting else None)
        if all(a.uri in t.tried for a in covering):
            t.tried.clear()
        if hold_back:
            t.state = "waiting_retry"
            t.timers.start("retry", 2.0, lambda: self._back_in_line(t))
            return
        self._back_in_line(t)

    def _back_in_line(self, t: TaskSession) -> None:
        if t.waiting is None:  # called from the console, never in line: the secretaries keep it
            self._forget(t)
            return
        if t.task_id not in self.tasks:
            return
        t.state = "queued"
        self._line.queues.requeue(t.waiting)
        self._line.changed(t.practice, t.queue)
        self._line.dispatch()

    # --- legs ---------------------------------------------------------------------------------------

    def handle(self, worker: str, ev: Any) -> None:
        """An event of one of its legs (from the leg router)."""
        leg = ev.leg
        t = self._legs.get(leg)
        if t is None:
            return
        if isinstance(ev, p.LegState) and ev.state == "confirmed":
            if leg == t.secretary_leg and t.state == "ringing":
                self._secretary_answered(t)
            elif leg == t.patient_leg and t.state == "calling":
                self._patient_answered(t)
        elif isinstance(ev, p.Digit) and leg == t.patient_leg and t.state == "confirming":
            if ev.digit == CONFIRM_DIGIT:
                self._patient_confirmed(t)
        elif isinstance(ev, p.PlaybackFinished) and leg == t.secretary_leg and t.state in ("calling", "confirming"):
            t.player.loop(self._ctx.path(self._ctx.settings.ringback_prompt, t.practice))
        elif isinstance(ev, p.LegEnded):
            self._leg_ended(t, leg, ev.code, ev.by)

    def leg_lost(self, worker: str, leg: str, cause: str) -> None:
        if leg in self._legs:
            self._leg_ended(self._legs[leg], leg, 500)

    def _secretary_answered(self, t: TaskSession) -> None:
        ctx = self._ctx
        t.timers.cancel("ring")
        secretary = t.secretary
        t.tried.clear()  # taken: a later attempt starts a fresh round
        self._desk.answered(secretary, t.task_id)
        ctx.events.call_answered(t.call_id or t.task_id, t.practice, secretary.id)
        t.state = "calling"
        t.attempts += 1
        leg = f"t{t.task_id[:11]}-p{next(self._seq)}"
        t.patient_leg = t.patient_player.leg = leg
        self._legs[leg] = t
        t.player.play([ctx.path("callback_task_intro", t.practice)])
        ctx.send(t.worker, p.Dial(leg, f"sip:{t.number}@{ctx.settings.outbound_trunk}",  # no internal header
                                  display_name=p.display_name(t.dialplan.name),
                                  timeout_seconds=ctx.settings.callback_patient_ring_s))
        self._write("start_attempt", t.task_id, secretary.id, leg, ctx.now())
        logger.info("callback task %s: %s calls %s back", t.task_id, secretary.id, mask_number(t.number))

    def _patient_answered(self, t: TaskSession) -> None:
        """Her line answered: a person, or her voicemail. Only a person presses 1."""
        t.state = "confirming"
        t.patient_player.loop(self._ctx.path(CONFIRM_PROMPT, t.practice))
        t.timers.start("confirm", self._ctx.settings.callback_confirm_s, lambda: self._not_confirmed(t))

    def _not_confirmed(self, t: TaskSession) -> None:
        """No 1 in time: an answering machine. Hang up on it; a failed attempt (retried later)."""
        if t.state != "confirming" or not t.patient_leg:
            return
        leg = t.patient_leg
        logger.info("callback task %s: nobody pressed 1 (voicemail?): attempt failed", t.task_id)
        self._ctx.send(t.worker, p.Hangup(leg, 480))
        self._legs.pop(leg, None)
        t.state = "calling"
        self._patient_not_reached(t, leg)

    def _patient_confirmed(self, t: TaskSession) -> None:
        ctx = self._ctx
        t.timers.cancel("confirm")
        t.state = "bridged"
        t.player.forget()
        t.patient_player.forget()
        ctx.send(t.worker, p.Bridge(t.secretary_leg, t.patient_leg))
        self._write("done", t.task_id, t.call_id, t.patient_leg, ctx.now())
        ctx.metrics.callback_tasks.labels(t.practice, "done").inc()
        self.tasks.pop(t.task_id, None)
        t.timers.cancel("expiry")
        logger.info("callback task %s done", t.task_id)

    def _leg_ended(self, t: TaskSession, leg: str, code: int, by: str = "remote") -> None:
        ctx = self._ctx
        self._legs.pop(leg, None)
        if t.state == "ringing" and leg == t.secretary_leg:
            ours = by == "worker"  # our worker could not place it: not her miss, retry shortly
            self._offer_failed(t, missed=code in p.MISSED_CODES and not ours, hold_back=ours)
            return
        if t.state in ("calling", "confirming"):
            t.timers.cancel("confirm")
            other = t.patient_leg if leg == t.secretary_leg else t.secretary_leg
            if leg == t.patient_leg and t.secretary_leg:  # no answer, busy, hung up without 1
                t.state = "calling"
                self._patient_not_reached(t, leg)
            else:  # she hung up while it rang
                if other:
                    ctx.send(t.worker, p.Hangup(other, 487))
                    self._legs.pop(other, None)
                t.patient_leg = t.secretary_leg = None
                self._write("attempt_failed", t.task_id, ctx.now())
                self._after_failed_attempt(t)
            return
        if t.state == "bridged":
            other = t.patient_leg if leg == t.secretary_leg else t.secretary_leg
            if other:
                ctx.send(t.worker, p.Hangup(other, 487))
                self._legs.pop(other, None)
            t.state = "ended"
            secretary, t.secretary = t.secretary, None
            t.timers.close()
            self._desk.free(secretary, wrap_up=t.dialplan.queues[t.queue].wrap_up_s)

    def _patient_not_reached(self, t: TaskSession, leg: str) -> None:
        """The attempt on `leg` reached nobody: recorded, the secretary told, then hung up."""
        ctx = self._ctx
        t.patient_leg = None
        self._write("attempt_failed", t.task_id, ctx.now(), leg=leg)
        ctx.metrics.callback_tasks.labels(t.practice, "no_answer").inc()
        t.player.play([ctx.path("callback_task_no_answer", t.practice)])
        t.timers.start("notice", NOTICE_S, lambda: self._hang_up_secretary(t))

    def _hang_up_secretary(self, t: TaskSession) -> None:
        if t.secretary_leg:
            self._ctx.send(t.worker, p.Hangup(t.secretary_leg, 480))
            self._legs.pop(t.secretary_leg, None)
            t.secretary_leg = None
        self._after_failed_attempt(t)

    def _after_failed_attempt(self, t: TaskSession) -> None:
        secretary, t.secretary = t.secretary, None
        self._desk.free(secretary, wrap_up=0)
        if t.attempts >= self._ctx.settings.callback_attempts:
            logger.info("callback task %s: %d attempts, left to the secretaries", t.task_id, t.attempts)
            self._forget(t)
            return
        t.state = "waiting_retry"
        t.timers.start("retry", self._ctx.settings.callback_retry_s, lambda: self._back_in_line(t))

    # --- helpers ------------------------------------------------------------------------------------

    def _forget(self, t: TaskSession) -> None:
        t.state = "ended"
        t.timers.close()
        self.tasks.pop(t.task_id, None)

    def _write(self, method: str, *args: Any, **kwargs: Any) -> None:
        if self.store is not None:
            self._ctx.recorder.submit(getattr(self.store, method), *args, **kwargs)


IN_LINE = ("overflow", "node_lost")  # the sources of the tasks waiting in line (the others: the API's)
CONFIRM_PROMPT = "callback_task_press_1"  # « tapez 1 pour être mis en relation »
CONFIRM_DIGIT = "1"
MIN_MESSAGE_S = 1.0  # shorter: hung up at the beep, nothing to call back about
NOTICE_S = 4.0  # how long the secretary hears "le patient ne répond pas" before we hang up


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
