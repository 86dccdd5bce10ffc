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
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

from callrouter.controller.queues import SecretaryStateError
from callrouter.domain.callback_dialogue import callable_number
from callrouter.domain.call import mask_number
from callrouter.domain.model import Dialplan
from callrouter.domain.serving import Secretary, Waiting
from callrouter.media import protocol as p

logger = logging.getLogger(__name__)

class TaskStore(Protocol):
    """What the controller needs of the callback-task store (callrouter.store.tasks); blocking,
    called on the recorder's thread."""

    def create(self, practice: str, number: str, source: str, now: dt.datetime, expires_at: dt.datetime,
               **fields: Any) -> Any: ...
    def start_attempt(self, task_id: str, who: str, leg: str, now: dt.datetime) -> Any: ...
    def attempt_failed(self, task_id: str, now: dt.datetime) -> Any: ...
    def done(self, task_id: str, call_id: str | None, leg: str, now: dt.datetime) -> Any: ...
    def expire_due(self, now: dt.datetime) -> Any: ...


@dataclass(eq=False)
class TaskSession:
    """A callback task while the controller holds it (in line, ringing, calling the patient)."""

    task_id: str
    dialplan: Dialplan
    queue: str
    number: str  # E.164
    call_id: str | None  # the call it came from
    expires_at: dt.datetime
    attempts: int = 0
    state: str = "queued"  # queued | ringing | calling | confirming | bridged | waiting_retry | ended
    worker: str | None = None
    secretary: Secretary | None = None
    secretary_leg: str | None = None
    patient_leg: str | None = None
    waiting: Waiting | None = None
    tried: set[str] = field(default_factory=set)
    timers: dict[str, Any] = field(default_factory=dict)

    @property
    def practice(self) -> str:
        return self.dialplan.practice


class CallbackDesk:
    def __init__(self, controller: Any, store: TaskStore | None):
        """`controller`: the call controller whose line, secretaries and media the tasks share."""
        self.c = controller
        self.store = store
        self.tasks: dict[str, TaskSession] = {}
        self._legs: dict[str, TaskSession] = {}
        self._seq = itertools.count(1)

    # --- creating and queueing -----------------------------------------------------------------------

    def create_from_call(self, s: Any, number: str) -> TaskSession:
        """The caller confirmed `number`: a task keeping her place (the time she joined the line)."""
        c = self.c
        now = c.now()
        queue = s.queue_name or next(iter(s.dialplan.queues), "")
        place = s.waiting.enqueued_at if s.waiting is not None else c.reactor.seconds()
        expires = now + dt.timedelta(seconds=c.settings.callback_expiry_s)
        t = TaskSession(uuid.uuid4().hex, s.dialplan, queue, number, s.call_id, expires)
        self._write("create", t.practice, number, "overflow", now, expires, task_id=t.task_id,
                    place_at=_utc(place), queue=queue, call_id=s.call_id)
        logger.info("call %s: callback task %s for %s", s.call_id, t.task_id, mask_number(number))
        c.metrics.callback_tasks.labels(t.practice, "created_overflow").inc()
        self.enqueue(t, place)
        return t

    def create_from_voicemail(self, s: Any, duration: float) -> str | None:
        """A message was left: a task for the secretaries to call back (listed in the API, called
        from the console, not put in line: they listen to the message first). None when the
        message is empty or the caller's number cannot be called back."""
        number = callable_number(s.call.caller)
        if number is None or duration < MIN_MESSAGE_S or s.dialplan is None:
            return None
        c = self.c
        now = c.now()
        task_id = uuid.uuid4().hex
        self._write("create", s.practice, number, "voicemail", now,
                    now + dt.timedelta(seconds=c.settings.callback_expiry_s), task_id=task_id,
                    place_at=s.call_started or now, queue=s.queue_name, call_id=s.call_id)
        c.metrics.callback_tasks.labels(s.practice, "created_voicemail").inc()
        return task_id

    def restore(self, tasks: Iterable[Any], dialplans: dict[str, Dialplan]) -> int:
        """Put back in line the tasks pending in the store (at start-up)."""
        n = 0
        for view in tasks:
            dialplan = dialplans.get(view.practice)
            if view.id in self.tasks or dialplan is None or view.source != "overflow":
                continue
            if view.attempts >= self.c.settings.callback_attempts:
                continue  # left to the secretaries through the API
            queue = view.queue if view.queue in dialplan.queues else next(iter(dialplan.queues), None)
            if queue is None:
                continue
            t = TaskSession(view.id, dialplan, queue, view.number, view.call_id, _aware(view.expires_at),
                            attempts=view.attempts)
            self.enqueue(t, _aware(view.place_at).timestamp())
            n += 1
        if n:
            logger.info("%d callback task(s) back in line", n)
            self.c._dispatch()
        return n

    def enqueue(self, t: TaskSession, place: float) -> None:
        c = self.c
        q = t.dialplan.queues[t.queue]
        self.tasks[t.task_id] = t
        t.state = "queued"
        t.waiting = c.queues.enqueue(t, t.practice, t.queue, q.priority, place,
                                     line=q.line or f"{t.practice}/{t.queue}", strategy=q.strategy,
                                     zone=c.zone(t.practice))
        delay = (t.expires_at - c.now()).total_seconds()
        self._timer(t, "expiry", max(0.0, delay), lambda: self._expire(t))
        c._queue_changed(t.practice, t.queue)

    def _expire(self, t: TaskSession) -> None:
        if t.state not in ("queued", "waiting_retry"):
            return  # being called now: let it finish
        self.c.queues.remove(t)
        self._forget(t)
        self._write("expire_due", self.c.now())
        self.c.metrics.callback_tasks.labels(t.practice, "expired").inc()
        logger.info("callback task %s expired", t.task_id)
        self.c._queue_changed(t.practice, t.queue)

    # --- offering it to a secretary --------------------------------------------------------------------

    def owns(self, leg: str) -> bool:
        return leg in self._legs

    def offer(self, w: Waiting, secretary: Secretary) -> None:
        t: TaskSession = w.session
        self.c.queues.remove(t)
        if not self._ring(t, secretary):  # no media capacity now: back in line shortly, same place
            t.state = "waiting_retry"
            self._timer(t, "retry", 5.0, lambda: self._back_in_line(t))

    def call_now(self, view: Any, who: str) -> TaskSession:
        """A secretary calls a task back now from her console (any task, e.g. one from a voicemail
        or typed by a colleague): her phone rings first, then the patient's. Raises
        SecretaryStateError when she or the task cannot (on a call, softphone off, task under way)."""
        c = self.c
        secretary = c.secretary(who)
        if secretary.busy:
            raise SecretaryStateError(f"{secretary.id} is {secretary.state}: finish the current call first")
        if secretary.username is not None and not secretary.registered:
            raise SecretaryStateError(f"{secretary.id}'s softphone is not registered")
        t = self.tasks.get(view.id)
        if t is None:
            dialplan = c._router().dialplans.get(view.practice)
            if dialplan is None or not dialplan.queues:
                raise SecretaryStateError(f"practice {view.practice} has no dialplan loaded")
            queue = view.queue if view.queue in dialplan.queues else next(iter(dialplan.queues))
            t = TaskSession(view.id, dialplan, queue, view.number, view.call_id, _aware(view.expires_at),
                            attempts=view.attempts)
        elif t.state not in ("queued", "waiting_retry"):
            raise SecretaryStateError(f"task {view.id} is being called already")
        c.queues.remove(t)
        self._cancel(t, "retry")
        if not self._ring(t, secretary):
            raise SecretaryStateError("no media capacity to place the call now; try again in a moment")
        return t

    def _ring(self, t: TaskSession, secretary: Secretary) -> bool:
        c = self.c
        worker = c.media.pick(2)
        if worker is None:
            return False
        t.worker, t.state, t.secretary = worker, "ringing", secretary
        secretary.activity = "ringing"
        t.tried.add(secretary.uri)
        leg = f"t{t.task_id[:11]}-s{next(self._seq)}"
        t.secretary_leg = leg
        self._legs[leg] = t
        console = f"{c.settings.console_url}/practices/{t.practice}?task={t.task_id}"
        pop = dict(dialplan=t.dialplan, call_id=t.call_id or t.task_id, caller=t.number, calls_today=0, site=None,
                   queue=t.queue, reason="rappel demandé", tier=None, ivr_answers=[], console_url=console)
        c._offer_pop(secretary, pop)
        c.media.send(worker, p.Dial(leg, secretary.uri, display_name=p.display_name(f"Rappel - {t.dialplan.name}"),
                                    headers={"X-Callrouter-Task-Id": t.task_id, "X-Callrouter-Practice": t.practice,
                                             "X-Callrouter-Reason": "rappel",
                                             "Call-Info": f"<{console}>;purpose=info"},
                                    timeout_seconds=c.settings.ring_timeout_s + 5))
        c._queue_changed(t.practice, t.queue)
        self._timer(t, "ring", c.settings.ring_timeout_s, lambda: self._ring_timeout(t))
        c.metrics.callback_tasks.labels(t.practice, "offered").inc()
        c._count_secretaries()
        return True

    def _ring_timeout(self, t: TaskSession) -> None:
        if t.state == "ringing" and t.secretary_leg:
            self.c.media.send(t.worker, p.Hangup(t.secretary_leg, 487))
            self._offer_failed(t, missed=True)

    def _offer_failed(self, t: TaskSession, missed: bool, hold_back: bool = False) -> None:
        c = self.c
        self._cancel(t, "ring")
        self._legs.pop(t.secretary_leg or "", None)
        t.secretary_leg = None
        secretary, t.secretary = t.secretary, None
        if secretary is not None:
            if hold_back:
                t.tried.discard(secretary.uri)
            if missed:
                c._missed(secretary)
            c._free_secretary(secretary, wrap_up=0)
        covering = c.queues.covering(t.practice, t.queue, t.waiting.line if t.waiting else None)
        if all(a.uri in t.tried for a in covering):
            t.tried.clear()
        if hold_back:
            t.state = "waiting_retry"
            self._timer(t, "retry", 2.0, lambda: self._back_in_line(t))
            return
        self._back_in_line(t)

    def _back_in_line(self, t: TaskSession) -> None:
        if t.waiting is None:  # called from the console, never in line: the secretaries keep it
            self._forget(t)
            return
        if t.task_id not in self.tasks:
            return
        t.state = "queued"
        self.c.queues.requeue(t.waiting)
        self.c._queue_changed(t.practice, t.queue)
        self.c._dispatch()

    # --- legs ---------------------------------------------------------------------------------------

    def leg_event(self, leg: str, ev: Any) -> None:
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
            self.c.media.send(t.worker, p.Play(leg, self.c._prompt_path(self.c.settings.ringback_prompt, t.practice),
                                               loop=True))
        elif isinstance(ev, p.LegEnded):
            self._leg_ended(t, leg, ev.code, ev.by)

    def leg_lost(self, leg: str) -> None:
        if leg in self._legs:
            self._leg_ended(self._legs[leg], leg, 500)

    def _secretary_answered(self, t: TaskSession) -> None:
        c = self.c
        self._cancel(t, "ring")
        secretary = t.secretary
        t.tried.clear()  # taken: a later attempt starts a fresh round
        secretary.missed = 0
        secretary.activity = "on_call"
        secretary.count_answer(t.task_id, c.now())
        c.events.call_answered(t.call_id or t.task_id, t.practice, secretary.id)
        c._count_secretaries()
        t.state = "calling"
        t.attempts += 1
        leg = f"t{t.task_id[:11]}-p{next(self._seq)}"
        t.patient_leg = leg
        self._legs[leg] = t
        c.media.send(t.worker, p.Play(t.secretary_leg, c._prompt_path("callback_task_intro", t.practice)))
        c.media.send(t.worker, p.Dial(leg, f"sip:{t.number}@{c.settings.outbound_trunk}",  # no internal header
                                      display_name=p.display_name(t.dialplan.name),
                                      timeout_seconds=c.settings.callback_patient_ring_s))
        self._write("start_attempt", t.task_id, secretary.id, leg, c.now())
        logger.info("callback task %s: %s calls %s back", t.task_id, secretary.id, mask_number(t.number))

    def _patient_answered(self, t: TaskSession) -> None:
        """Her line answered: a person, or her voicemail. Only a person presses 1."""
        c = self.c
        t.state = "confirming"
        c.media.send(t.worker, p.Play(t.patient_leg, c._prompt_path(CONFIRM_PROMPT, t.practice), loop=True))
        self._timer(t, "confirm", c.settings.callback_confirm_s, lambda: self._not_confirmed(t))

    def _not_confirmed(self, t: TaskSession) -> None:
        """No 1 in time: an answering machine. Hang up on it; a failed attempt (retried later)."""
        if t.state != "confirming" or not t.patient_leg:
            return
        leg = t.patient_leg
        logger.info("callback task %s: nobody pressed 1 (voicemail?): attempt failed", t.task_id)
        self.c.media.send(t.worker, p.Hangup(leg, 480))
        self._legs.pop(leg, None)
        t.state = "calling"
        self._patient_not_reached(t, leg)

    def _patient_confirmed(self, t: TaskSession) -> None:
        c = self.c
        self._cancel(t, "confirm")
        t.state = "bridged"
        c.media.send(t.worker, p.Bridge(t.secretary_leg, t.patient_leg))
        self._write("done", t.task_id, t.call_id, t.patient_leg, c.now())
        c.metrics.callback_tasks.labels(t.practice, "done").inc()
        self.tasks.pop(t.task_id, None)
        self._cancel(t, "expiry")
        logger.info("callback task %s done", t.task_id)

    def _leg_ended(self, t: TaskSession, leg: str, code: int, by: str = "remote") -> None:
        c = self.c
        self._legs.pop(leg, None)
        if t.state == "ringing" and leg == t.secretary_leg:
            ours = by == "worker"  # our worker could not place it: not her miss, retry shortly
            self._offer_failed(t, missed=code in p.MISSED_CODES and not ours, hold_back=ours)
            return
        if t.state in ("calling", "confirming"):
            self._cancel(t, "confirm")
            other = t.patient_leg if leg == t.secretary_leg else t.secretary_leg
            if leg == t.patient_leg and t.secretary_leg:  # no answer, busy, hung up without 1
                t.state = "calling"
                self._patient_not_reached(t, leg)
            else:  # she hung up while it rang
                if other:
                    c.media.send(t.worker, p.Hangup(other, 487))
                    self._legs.pop(other, None)
                t.patient_leg = t.secretary_leg = None
                self._write("attempt_failed", t.task_id, c.now())
                self._after_failed_attempt(t)
            return
        if t.state == "bridged":
            other = t.patient_leg if leg == t.secretary_leg else t.secretary_leg
            if other:
                c.media.send(t.worker, p.Hangup(other, 487))
                self._legs.pop(other, None)
            t.state = "ended"
            secretary, t.secretary = t.secretary, None
            for name in list(t.timers):
                self._cancel(t, name)
            c._free_secretary(secretary, wrap_up=t.dialplan.queues[t.queue].wrap_up_s)

    def _patient_not_reached(self, t: TaskSession, leg: str) -> None:
        """The attempt on `leg` reached nobody: recorded, the secretary told, then hung up."""
        c = self.c
        t.patient_leg = None
        self._write("attempt_failed", t.task_id, c.now(), leg=leg)
        c.metrics.callback_tasks.labels(t.practice, "no_answer").inc()
        c.media.send(t.worker, p.Play(t.secretary_leg, c._prompt_path("callback_task_no_answer", t.practice)))
        self._timer(t, "notice", NOTICE_S, lambda: self._hang_up_secretary(t))

    def _hang_up_secretary(self, t: TaskSession) -> None:
        if t.secretary_leg:
            self.c.media.send(t.worker, p.Hangup(t.secretary_leg, 480))
            self._legs.pop(t.secretary_leg, None)
            t.secretary_leg = None
        self._after_failed_attempt(t)

    def _after_failed_attempt(self, t: TaskSession) -> None:
        c = self.c
        secretary, t.secretary = t.secretary, None
        c._free_secretary(secretary, wrap_up=0)
        if t.attempts >= c.settings.callback_attempts:
            logger.info("callback task %s: %d attempts, left to the secretaries", t.task_id, t.attempts)
            self._forget(t)
            return
        t.state = "waiting_retry"
        self._timer(t, "retry", c.settings.callback_retry_s, lambda: self._back_in_line(t))

    # --- helpers ------------------------------------------------------------------------------------

    def _forget(self, t: TaskSession) -> None:
        t.state = "ended"
        for name in list(t.timers):
            self._cancel(t, name)
        self.tasks.pop(t.task_id, None)

    def _write(self, method: str, *args: Any, **kwargs: Any) -> None:
        if self.store is not None:
            self.c.recorder.submit(getattr(self.store, method), *args, **kwargs)

    def _timer(self, t: TaskSession, name: str, seconds: float, fn: Any) -> None:
        self._cancel(t, name)
        t.timers[name] = self.c.reactor.callLater(seconds, self._fire, t, name, fn)

    def _fire(self, t: TaskSession, name: str, fn: Any) -> None:
        t.timers.pop(name, None)
        fn()

    def _cancel(self, t: TaskSession, name: str) -> None:
        timer = t.timers.pop(name, None)
        if timer is not None and timer.active():
            timer.cancel()


CONFIRM_PROMPT = "callback_task_press_1"  # « tapez 1 pour être mis en relation »
CONFIRM_DIGIT = "1"
MIN_MESSAGE_S = 1.0  # shorter: hung up at the beep, nothing to call back about
NOTICE_S = 4.0  # how long the secretary hears "le patient ne répond pas" before we hang up


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
