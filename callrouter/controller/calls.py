"""Per-call orchestration: media events in, `decide()` and the IVR machine, media commands out.

Each call is a CallSession with an explicit state; `handle()` dispatches an event through the
table `_HANDLERS[(state, event type)]`. The controller owns no clock of its own: timers go through
the injected reactor (twisted.internet.task.Clock in tests). It keeps for each call the dialplan in
force when the call arrived, so one call is never routed by two versions of the rules.

"Calls today" (how many times a caller called a practice, on her screen-pop; how many calls a
secretary answered, for `fewest_calls`) is counted on the practice's local day, in its time zone.
The counts are kept in memory and seeded from the call records at start-up (`restore_counts`, fed
by `callrouter.store.calls.arrivals_since` on a thread), rather than read from the store for each
call: an offer is built on the reactor thread and must not wait for the database (nor fail when it
is briefly down: the recorder holds the writes then, and a store read would see none of them), and
each call is counted once by its id, so a call that arrives while the seed is being read is not
counted twice. Counts older than two days are dropped as calls come.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol
from zoneinfo import ZoneInfo

from callrouter.controller.callbacks import CallbackDesk, TaskSession, TaskStore
from callrouter.controller.queues import QueueBook, SecretaryStateError, UnknownSecretary
from callrouter.controller.settings import ControllerSettings
from callrouter.domain import callback_dialogue, ivr
from callrouter.domain.serving import SECRETARY_STATES, Secretary, Waiting
from callrouter.domain.call import Call, mask_number
from callrouter.domain.decision import Decision
from callrouter.domain.model import (
    Action,
    AnnounceAction,
    CallbackOfferAction,
    Dialplan,
    EscalateAction,
    ForwardAction,
    HangupAction,
    IvrAction,
    QueueAction,
    VoicemailAction,
)
from callrouter.domain.routing import Router, awaiting_menu, decide, overflow_decision
from callrouter.events import card, topics
from callrouter.media import protocol as p
from callrouter.metrics import Metrics

logger = logging.getLogger(__name__)


class MediaControl(Protocol):
    """Sends a command to one media worker (implemented by the worker pool)."""

    def send(self, worker: str, command: Any) -> None: ...

    def pick(self, legs: int = 1) -> str | None:
        """A worker with room for `legs` more legs, for calls we place ourselves."""


class State(enum.Enum):
    ANNOUNCE = "announce"
    IVR = "ivr"
    QUEUED = "queued"
    RINGING = "ringing"  # a secretary's phone rings, the caller hears ringback
    BRIDGED = "bridged"
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"  # offered a callback: 1 accepts
    CALLBACK_NUMBER = "callback_number"  # typing the number to call back, then #
    CALLBACK_CONFIRM = "callback_confirm"  # number read back: 1 confirms, 2 types another
    FORWARDING = "forwarding"
    ENDED = "ended"


@dataclass(eq=False)
class CallSession:
    call_id: str
    worker: str
    leg: str
    dialplan: Dialplan | None
    call: Call
    state: State = State.ANNOUNCE
    decision: Decision | None = None
    menu: ivr.MenuState | None = None
    play_queue: list[str] = field(default_factory=list)
    after_play: Callable[[], None] | None = None
    timers: dict[str, Any] = field(default_factory=dict)
    waiting: Waiting | None = None
    secretary: Secretary | None = None
    other_leg: str | None = None  # the secretary's (once answered) or the forward's leg
    offers: dict[str, Secretary] = field(default_factory=dict)  # legs ringing secretaries -> who
    tried: set[str] = field(default_factory=set)
    overflowed: bool = False
    tier_started: str | None = None
    bridged_at: float | None = None
    ivr_answers: list[tuple[str, str]] = field(default_factory=list)
    menu_ahead: IvrAction | None = None  # the menu an announcement leads to (digits may skip ahead)
    recording_started: dt.datetime | None = None
    call_started: dt.datetime | None = None
    outcome: str | None = None  # outcome to close with when the caller leg ends
    queue_name: str | None = None  # the queue the call was sent to (a callback task waits there)
    dialogue: callback_dialogue.State | None = None  # the callback-number dialogue, once offered

    @property
    def practice(self) -> str:
        return self.dialplan.practice if self.dialplan else ""


class CallController:
    def __init__(self, reactor, media: MediaControl, recorder, router: Callable[[], Router], prompt_path: Callable[[str, str | None], str],
                 settings: ControllerSettings, metrics: Metrics | None = None,
                 escalate: Callable[[CallSession, str], None] | None = None, events: Any = None,
                 tasks: TaskStore | None = None):
        self.reactor = reactor
        self.media = media
        self.recorder = recorder
        self._router = router
        self._prompt_path = prompt_path
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._escalate = escalate or (lambda s, tier: None)
        self.events = events if events is not None else _NoEvents()
        self._calls_today: dict[tuple[str, str], dict[str, dt.datetime]] = {}  # (practice, caller) -> call id -> arrival
        self.queues = QueueBook(settings.secretaries, settings.secretary_domain, settings.levels, settings.login_required)
        self._restore_secretaries()
        self.callbacks = CallbackDesk(self, tasks)
        self.sessions: dict[str, CallSession] = {}  # caller leg -> session
        self._other_legs: dict[str, CallSession] = {}  # dialled leg -> session
        self._seq = itertools.count(1)
        self._handling: dict[str, float] = {}  # "practice/queue" -> recent handling time (EWMA, s)

    # --- time ------------------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.reactor.seconds(), dt.timezone.utc)

    def _timer(self, s: CallSession, name: str, seconds: float, fn: Callable[[], None]) -> None:
        self._cancel(s, name)
        s.timers[name] = self.reactor.callLater(seconds, self._fire, s, name, fn)

    def _fire(self, s: CallSession, name: str, fn: Callable[[], None]) -> None:
        s.timers.pop(name, None)
        if s.state is not State.ENDED:
            fn()

    def _cancel(self, s: CallSession, name: str) -> None:
        t = s.timers.pop(name, None)
        if t is not None and t.active():
            t.cancel()

    # --- events ---------------------------------------------------------------------------------

    def handle(self, worker: str, event: Any) -> None:
        """One event from a media worker."""
        if isinstance(event, p.IncomingCall):
            self._incoming(worker, event)
            return
        leg = getattr(event, "leg", "")
        s = self.sessions.get(leg)
        if s is not None:
            self._caller_event(s, event)
            return
        s = self._other_legs.get(leg)
        if s is not None:
            self._other_leg_event(s, leg, event)
        elif self.callbacks.owns(leg):
            self.callbacks.leg_event(leg, event)
        elif self.alerts is not None and self.alerts.handle(worker, event):
            pass  # an alert call's leg (see the alert calls section at the end)
        elif isinstance(event, p.Error):
            logger.warning("worker %s reports: %s (%s)", worker, event.message, event.command)

    # --- the media pool's observer interface ---------------------------------------------------------

    def media_event(self, worker: str, event: Any) -> None:
        if not isinstance(event, p.Ready):
            self.handle(worker, event)

    def leg_lost(self, worker: str, leg: str, cause: str) -> None:
        """A leg vanished with its worker (no leg_ended will come)."""
        s = self.sessions.pop(leg, None)
        if s is not None:
            for other in [*s.offers, *([s.other_leg] if s.other_leg else [])]:
                self._other_legs.pop(other, None)
            self._end(s, "failed", cause=cause, hangup=False)
            return
        s = self._other_legs.get(leg)
        if s is not None:
            self._other_leg_ended(s, leg, p.LegEnded(leg, 500, cause, "local"))
        self.callbacks.leg_lost(leg)
        if self.alerts is not None:
            self.alerts.leg_lost(worker, leg, cause)

    def registrations_changed(self, usernames: frozenset[str]) -> None:
        """The usernames registered at the edge now (polled): only they are offered calls."""
        self.metrics.secretaries_registered.set(len(usernames))
        before = {a.uri: a.registered for a in self.queues.secretaries() if a.username}
        came = self.queues.set_registered(usernames)
        for secretary in came:
            # After missed offers, turning her softphone off and on is how she says "I am back"; a
            # pause she chose stays until she resumes (a network blip re-registers too).
            if secretary.paused is not None and secretary.auto_paused:
                secretary.paused, secretary.missed, secretary.auto_paused = None, 0, False
        for secretary in self.queues.secretaries():
            if secretary.username and before.get(secretary.uri) and not secretary.registered:
                self.events.secretary_changed(secretary.username, "offline", reason="softphone not registered")
            elif secretary in came and not secretary.busy:
                self._secretary_changed(secretary)
        self._count_secretaries()
        if came:
            self._save_secretaries()
            self._dispatch()

    def _incoming(self, worker: str, ev: p.IncomingCall) -> None:
        now = self.now()
        call_id = uuid.uuid4().hex
        call = Call(ev.number, ev.caller or None, arrived_at=now)  # its menus are those of this instant
        router = self._router()
        dialplan = router.by_number.get(ev.number)
        s = CallSession(call_id, worker, ev.leg, dialplan, call, call_started=now)
        self.sessions[ev.leg] = s
        self.metrics.active_calls.inc()
        logger.info("call %s on %s: %s -> %s (%s)", call_id, worker, mask_number(ev.caller), ev.number,
                    dialplan.practice if dialplan else "no practice")
        self.recorder.open_call(call_id, s.practice, ev.number, ev.caller or None, now, worker)
        self.events.call_arrived(call_id, s.practice, ev.caller or None,
                                 site=dialplan.number_sites.get(ev.number) if dialplan else None)
        if dialplan is not None and ev.caller:
            self._count_call(call_id, dialplan.practice, ev.caller, now)
        decision = router.decide(call, now)
        if decision.reject is not None:
            self._reject(s, decision)
            return
        self.media.send(worker, p.Answer(ev.leg))
        self.recorder.ivr_answered(call_id, now)
        self._apply(s, decision)

    def _reject(self, s: CallSession, decision: Decision) -> None:
        """Refuse the call with the decision's SIP code, before any 200 (an answered call is billed)."""
        s.decision = decision
        self.recorder.set_route(s.call_id, decision.route, "; ".join(decision.why), self.now(),
                                dialplan_version=decision.dialplan_version, why=decision.why)
        self.media.send(s.worker, p.Hangup(s.leg, decision.reject))
        self._end(s, "rejected", hangup=False, cause=decision.status)

    # --- calls today (see the module docstring) ---------------------------------------------------

    def counts_since(self) -> dt.datetime:
        """From when the call records are needed to seed the counts of every practice's today."""
        return self.now() - COUNTS_KEPT

    def restore_counts(self, arrivals: Iterable[Any]) -> None:
        """Seed "calls today" from the call records (`Arrival`s); a call already counted is not
        counted again."""
        n = 0
        for a in arrivals:
            arrived = _aware(a.arrived_at)
            if a.practice and a.caller:
                self._count_call(a.call_id, a.practice, a.caller, arrived)
            secretary = self.queues.find(a.secretary) if a.secretary and a.answered_at else None
            if secretary is not None:
                secretary.answers.setdefault(a.call_id, _aware(a.answered_at))
            n += 1
        logger.info("calls today seeded from %d call record(s)", n)

    def _count_call(self, call_id: str, practice: str, caller: str, arrived: dt.datetime) -> None:
        calls = self._calls_today.setdefault((practice, caller), {})
        calls[call_id] = arrived
        if len(self._calls_today) % 256 == 0:  # now and then: forget the callers of past days
            horizon = self.now() - COUNTS_KEPT
            for key in [k for k, v in self._calls_today.items() if max(v.values()) < horizon]:
                del self._calls_today[key]

    def calls_today(self, practice: str, caller: str | None) -> int:
        """Calls from `caller` to `practice` on the practice's local day (this one included)."""
        if not caller:
            return 0
        zone = self.zone(practice)
        today = self.now().astimezone(zone).date()
        return sum(1 for at in self._calls_today.get((practice, caller), {}).values()
                   if at.astimezone(zone).date() == today)

    def zone(self, practice: str) -> ZoneInfo:
        """The practice's time zone (its dialplan's), for its local day."""
        dialplan = self._router().dialplans.get(practice)
        return ZoneInfo(dialplan.calendar.timezone) if dialplan is not None else LOCAL_DAY_ZONE

    def _caller_event(self, s: CallSession, ev: Any) -> None:
        handler = _HANDLERS.get((s.state, type(ev))) or _ANY_STATE.get(type(ev))
        if handler is not None:
            handler(self, s, ev)

    def _other_leg_event(self, s: CallSession, leg: str, ev: Any) -> None:
        if isinstance(ev, p.LegState) and ev.state == "confirmed":
            if (s.state is State.RINGING and leg in s.offers) or (s.state is State.FORWARDING and leg == s.other_leg):
                self._connected(s, leg)
        elif isinstance(ev, p.LegEnded):
            self._other_leg_ended(s, leg, ev)

    # --- decisions -------------------------------------------------------------------------------

    def _apply(self, s: CallSession, decision: Decision, detail: str | None = None) -> None:
        s.decision = decision
        reason = decision.reason or ""
        if decision.tier:
            reason = f"{reason}; tier {decision.tier}".lstrip("; ")
        if detail:  # e.g. why it overflowed: the record must explain the route taken
            reason = f"{reason}; {detail}".lstrip("; ")
        self.recorder.set_route(s.call_id, decision.route, reason, self.now(),
                                dialplan_version=decision.dialplan_version, why=decision.why)
        if decision.tier and s.tier_started != decision.tier and s.dialplan is not None:
            s.tier_started = decision.tier
            self.metrics.escalations_requested.labels(s.practice, decision.tier).inc()
            logger.warning("call %s: escalation tier %s requested for %s", s.call_id, decision.tier, s.practice)
            self._escalate(s, decision.tier)
        self._execute(s, decision.action)

    def _execute(self, s: CallSession, action: Action | None) -> None:
        match action:
            case AnnounceAction(prompt=prompt, then=then):
                s.state = State.ANNOUNCE
                s.menu_ahead = awaiting_menu(then)
                self._play(s, [prompt], lambda: self._execute(s, then) if then else self._hangup(s, s.outcome or "announced"))
            case IvrAction(menu=name):
                self._enter_menu(s, name)
            case QueueAction(queue=queue, announce=announce):
                self._with_announce(s, announce, lambda: self._enqueue(s, queue))
            case VoicemailAction(announce=announce):
                self._voicemail(s, announce)
            case CallbackOfferAction(announce=announce):
                self._callback_offer(s, announce)
            case ForwardAction(destination=dest, announce=announce):
                self._with_announce(s, announce, lambda: self._forward(s, dest))
            case EscalateAction():  # decide() turns these into announcements; be safe
                self._hangup(s, s.outcome or "announced")
            case HangupAction() | None:
                self._hangup(s, s.outcome or "announced")

    def _with_announce(self, s: CallSession, prompt: str | None, then: Callable[[], None]) -> None:
        if prompt:
            s.state = State.ANNOUNCE
            self._play(s, [prompt], then)
        else:
            then()

    # --- prompts ---------------------------------------------------------------------------------

    def _path(self, s: CallSession, name: str) -> str:
        return str(self._prompt_path(name, s.practice or None))

    def _play(self, s: CallSession, names: list[str], then: Callable[[], None] | None) -> None:
        paths = [self._path(s, n) for n in names]
        s.play_queue = paths[1:]
        s.after_play = then
        self.media.send(s.worker, p.Play(s.leg, paths[0]))

    def _loop(self, s: CallSession, name: str) -> None:
        s.play_queue, s.after_play = [], None
        self.media.send(s.worker, p.Play(s.leg, self._path(s, name), loop=True))

    def _stop_playing(self, s: CallSession) -> None:
        if s.play_queue or s.after_play:
            s.play_queue, s.after_play = [], None
            self.media.send(s.worker, p.StopPlayback(s.leg))

    def _on_playback_finished(self, s: CallSession, ev: p.PlaybackFinished) -> None:
        if s.play_queue:
            self.media.send(s.worker, p.Play(s.leg, s.play_queue.pop(0)))
            return
        then, s.after_play = s.after_play, None
        if then is not None:
            then()

    # --- IVR -------------------------------------------------------------------------------------

    def _enter_menu(self, s: CallSession, name: str) -> None:
        menu = s.dialplan.ivr[name]
        s.state = State.IVR
        s.menu, prompt = ivr.enter(menu)
        self.events.call_in_ivr(s.call_id, s.practice, name)
        self._prompt_menu(s, prompt)

    def _prompt_menu(self, s: CallSession, prompt: ivr.Prompt) -> None:
        self._cancel(s, "ivr")
        self._play(s, list(prompt.prompts), lambda: self._timer(s, "ivr", prompt.timeout_s, lambda: self._ivr_timeout(s)))

    def _announce_digit(self, s: CallSession, ev: p.Digit) -> None:
        """A caller who knows the menu may answer it during the announcement before it."""
        if s.menu_ahead is None:
            return
        self._stop_playing(s)
        s.state = State.IVR
        s.menu, _ = ivr.enter(s.dialplan.ivr[s.menu_ahead.menu])
        self._ivr_digit(s, ev)

    def _ivr_digit(self, s: CallSession, ev: p.Digit) -> None:
        menu = s.dialplan.ivr[s.menu.menu]
        self._cancel(s, "ivr")
        self._stop_playing(s)
        s.menu, outcome = ivr.on_digit(menu, s.menu, ev.digit)
        if ev.digit not in menu.options:  # kept on the record as pressed: the call can be explained
            s.ivr_answers.append((menu.name, ev.digit))
            self.recorder.add_ivr_answer(s.call_id, menu.name, ev.digit, self.now())
        self._ivr_outcome(s, menu.name, outcome)

    def _ivr_timeout(self, s: CallSession) -> None:
        menu = s.dialplan.ivr[s.menu.menu]
        s.menu, outcome = ivr.on_timeout(menu, s.menu)
        self._ivr_outcome(s, menu.name, outcome)

    def _ivr_outcome(self, s: CallSession, menu: str, outcome: ivr.Outcome) -> None:
        match outcome:
            case ivr.Prompt():
                self._prompt_menu(s, outcome)
            case ivr.Chosen(digit=digit):
                s.ivr_answers.append((menu, digit))
                self.recorder.add_ivr_answer(s.call_id, menu, digit, self.now())
                s.call = s.call.with_digit(digit)
                self._apply(s, decide(s.dialplan, s.call, self.now()))
            case ivr.Exhausted():
                self.metrics.ivr_timeouts.labels(s.practice).inc()
                s.ivr_answers.append((menu, ivr.TIMEOUT))
                self.recorder.add_ivr_answer(s.call_id, menu, ivr.TIMEOUT, self.now())
                s.call = s.call.with_digit(ivr.TIMEOUT)
                self._apply(s, decide(s.dialplan, s.call, self.now()))

    # --- queue and secretaries ---------------------------------------------------------------------

    def _enqueue(self, s: CallSession, queue: str) -> None:
        dialplan = s.dialplan
        q = dialplan.queues[queue]
        overflow = dialplan.routes.overflow
        s.queue_name = queue
        line = q.line or f"{dialplan.practice}/{queue}"
        if not s.overflowed:
            if not any(a.reachable for a in self.queues.covering(dialplan.practice, queue, line)):
                self._overflow(s, "nobody")  # nobody covering the practice is logged in and registered
                return
            if overflow is not None and self.queues.length(line) >= overflow.queue_max:
                self._overflow(s, "length")
                return
        s.state = State.QUEUED
        s.waiting = self.queues.enqueue(s, dialplan.practice, queue, q.priority, self.reactor.seconds(),
                                        line=line, strategy=q.strategy, zone=self.zone(dialplan.practice))
        self.recorder.queued(s.call_id, queue, self.now())
        d = s.decision
        self.events.call_queued(s.call_id, s.practice, queue, reason=d.reason if d else None, tier=d.tier if d else None)
        self._queue_changed(dialplan.practice, queue)
        self._loop(s, self.settings.hold_prompt)
        if overflow is not None and not s.overflowed:
            self._timer(s, "wait_max", overflow.wait_max_s, lambda: self._overflow(s, "wait"))
        self._timer(s, "announce", q.announce_interval_s, lambda: self._announce_position(s))
        self._dispatch()

    def _announce_position(self, s: CallSession) -> None:
        if s.state is not State.QUEUED:
            return
        position = self.queues.position(s)
        names = [position_prompt(position), wait_prompt(self.estimated_wait(s.waiting, position))]
        names = [n for n in names if self._prompt_known(s, n)] or ["queue_position"]
        self._play(s, names, lambda: self._loop(s, self.settings.hold_prompt) if s.state is State.QUEUED else None)
        interval = s.dialplan.queues[s.waiting.queue].announce_interval_s
        self._timer(s, "announce", interval, lambda: self._announce_position(s))

    def estimated_wait(self, w: Waiting, position: int) -> float:
        """Seconds until a secretary takes this call: calls ahead times the recent handling time,
        shared among the secretaries covering the queue who take calls now (logged in, softphone
        registered, not paused; on a call or not): the configured ones who are away answer none."""
        handling = self._handling.get(w.line, DEFAULT_HANDLING_S)
        secretaries = max(1, sum(1 for a in self.queues.covering(w.practice, w.queue, w.line) if a.reachable))
        return position * handling / secretaries

    def _handled(self, s: CallSession) -> None:
        """Feed the handling-time average with a call that a secretary just finished."""
        if s.waiting is None or s.bridged_at is None:
            return
        wrap_up = s.dialplan.queues[s.waiting.queue].wrap_up_s
        sample = self.reactor.seconds() - s.bridged_at + wrap_up
        old = self._handling.get(s.waiting.line, DEFAULT_HANDLING_S)
        self._handling[s.waiting.line] = old + HANDLING_WEIGHT * (sample - old)

    def _queue_changed(self, practice: str, queue: str) -> None:
        waiting = [w for w in self.queues.waiting() if (w.practice, w.queue) == (practice, queue)]
        longest = self.reactor.seconds() - min(w.enqueued_at for w in waiting) if waiting else 0.0
        self.events.queue_changed(practice, queue, len(waiting), longest)
        self.metrics.queue_waiting.labels(practice, queue).set(len(waiting))

    def _prompt_known(self, s: CallSession, name: str) -> bool:
        return Path(self._path(s, name)).exists()

    def _dispatch(self) -> None:
        while (pair := self.queues.next_offer(self._excluded(), self.now())) is not None:
            self._offer(*pair)

    def _excluded(self) -> dict[Any, set[str]]:
        return {w.session: w.session.tried for w in self.queues.waiting()}

    def _today(self) -> dt.date:
        return self.now().astimezone(LOCAL_DAY_ZONE).date()

    def _offer(self, w: Waiting, secretaries: list[Secretary]) -> None:
        """Ring `secretaries` (one, or all for ring_all) for the call `w`: screen-pop first, then the
        phone, each with the practice's diary context in its headers."""
        s = w.session
        if isinstance(s, TaskSession):  # a callback task: one secretary at a time
            self.callbacks.offer(w, secretaries[0])
            return
        self.queues.remove(s)
        s.state = State.RINGING
        d = s.decision
        label = (d.reason if d and d.reason else s.dialplan.queues[w.queue].label)
        console = f"{self.settings.console_url}/practices/{s.practice}?call={s.call_id}"
        headers = {
            "X-Callrouter-Call-Id": s.call_id,
            "X-Callrouter-Practice": s.practice,
            "X-Callrouter-Reason": p.header_safe(d.reason or "") if d else "",
            "X-Callrouter-Tier": d.tier or "" if d else "",
            "Call-Info": f"<{console}>;purpose=info",
        }
        caller = s.call.caller
        calls_today = self.calls_today(s.practice, caller)
        self._queue_changed(w.practice, w.queue)
        for secretary in secretaries:
            secretary.activity = "ringing"
            s.tried.add(secretary.uri)
            leg = f"{s.call_id[:12]}-s{next(self._seq)}"
            s.offers[leg] = secretary
            self._other_legs[leg] = s
            pop = dict(dialplan=s.dialplan, call_id=s.call_id, caller=caller, calls_today=calls_today,
                       site=d.site if d else None, queue=w.queue, reason=d.reason if d else None,
                       tier=d.tier if d else None, ivr_answers=list(s.ivr_answers), console_url=console)
            self._offer_pop(secretary, pop)  # the screen-pop goes out before her phone rings
            self.media.send(s.worker, p.Dial(leg, secretary.uri, display_name=p.display_name(f"{s.dialplan.name} - {label}"),
                                             headers=headers, timeout_seconds=self.settings.ring_timeout_s + 5))
            self.recorder.offered(s.call_id, secretary.uri, self.now())
            self.recorder.leg_started(s.call_id, leg, "secretary", secretary.uri, self.now())
        self._count_secretaries()
        self._loop(s, self.settings.ringback_prompt)
        self._timer(s, "ring", self.settings.ring_timeout_s, lambda: self._ring_timeout(s))

    def _ring_timeout(self, s: CallSession) -> None:
        if s.state is State.RINGING and s.offers:
            logger.info("call %s: %s did not answer in time", s.call_id, ", ".join(a.id for a in s.offers.values()))
            self._withdraw_offers(s, "ring_timeout", missed=True)

    def _withdraw_offers(self, s: CallSession, cause: str, missed: bool) -> None:
        """Stop every phone still ringing for this call, then put it back in line."""
        for leg in list(s.offers):
            self.media.send(s.worker, p.Hangup(leg, 487))
            self._offer_ended(s, leg, cause, missed)

    def _offer_ended(self, s: CallSession, leg: str, cause: str, missed: bool = False,
                     hold_back: bool = False) -> None:
        """One secretary did not take the call; `missed` when it was hers to take (no answer, busy,
        declined): after `max_missed_offers` in a row she is paused, with the reason. When no phone
        rings for it any more, the call goes back to its place in line (after HOLD_BACK_S when
        `hold_back`: the media worker could not place the offer)."""
        secretary = s.offers.pop(leg, None)
        self._other_legs.pop(leg, None)
        self.recorder.leg_ended(leg, cause, self.now())
        if secretary is not None:
            if hold_back:
                s.tried.discard(secretary.uri)
            if missed:
                self._missed(secretary)
            self._free_secretary(secretary, wrap_up=0)
        if s.offers or s.state is not State.RINGING:
            return
        self._cancel(s, "ring")
        s.state = State.QUEUED
        if hold_back:
            self._loop(s, self.settings.hold_prompt)
            self._timer(s, "hold_back", HOLD_BACK_S, lambda: self._back_in_line(s))
            return
        self._back_in_line(s)

    def _back_in_line(self, s: CallSession) -> None:
        if s.state is not State.QUEUED:
            return
        self.queues.requeue(s.waiting)
        self.events.call_queued(s.call_id, s.practice, s.waiting.queue)
        self._queue_changed(s.waiting.practice, s.waiting.queue)
        covering = self.queues.covering(s.waiting.practice, s.waiting.queue, s.waiting.line)
        if all(a.uri in s.tried for a in covering):
            s.tried.clear()  # everyone was tried: start a new round
        self._loop(s, self.settings.hold_prompt)
        self._dispatch()

    def _missed(self, secretary: Secretary) -> None:
        secretary.missed += 1
        limit = self.settings.max_missed_offers
        if limit and secretary.missed >= limit and secretary.paused is None:
            secretary.paused = "1 appel manqué" if secretary.missed == 1 else f"{secretary.missed} appels manqués d'affilée"
            secretary.auto_paused = True
            logger.warning("secretary %s paused after %d missed offers", secretary.id, secretary.missed)
            self._save_secretaries()
            self._secretary_changed(secretary)

    def _free_secretary(self, secretary: Secretary | None, wrap_up: float) -> None:
        if secretary is None:
            return
        if wrap_up > 0:
            secretary.activity = "wrap_up"
            self._secretary_changed(secretary)
            self.reactor.callLater(wrap_up, self._secretary_ready, secretary)
        else:
            self._secretary_ready(secretary)

    def _offer_pop(self, secretary: Secretary, pop: dict) -> None:
        """Build her screen-pop once: kept for her console (API) and published on MQTT."""
        secretary.offer = card.screen_pop(pop["dialplan"], at=self.now(), secretary=topics.secretary_id(secretary.id),
                                      **{k: v for k, v in pop.items() if k != "dialplan"})
        self.events.offer_made(secretary.offer)

    def _secretary_ready(self, secretary: Secretary) -> None:
        secretary.activity = "idle"
        secretary.offer = None
        secretary.idle_since = self.reactor.seconds()
        self._secretary_changed(secretary)
        self._dispatch()

    def _connected(self, s: CallSession, leg: str) -> None:
        self._cancel(s, "ring")
        self._cancel(s, "wait_max")
        self._cancel(s, "announce")
        s.play_queue, s.after_play = [], None
        answered_offer = s.state is State.RINGING
        if answered_offer:
            s.secretary = s.offers.pop(leg)
            s.other_leg = leg
        self.media.send(s.worker, p.Bridge(s.leg, s.other_leg))
        if answered_offer:
            secretary = s.secretary
            secretary.missed = 0
            secretary.activity = "on_call"
            secretary.count_answer(s.call_id, self.now())
            waited = self.reactor.seconds() - s.waiting.enqueued_at
            self.metrics.queue_wait.labels(s.practice, s.waiting.queue).observe(waited)
            self.recorder.answered(s.call_id, secretary.uri, self.now())
            self.events.call_answered(s.call_id, s.practice, secretary.id, waited_s=waited)
            self._count_secretaries()
        s.state = State.BRIDGED
        s.bridged_at = self.reactor.seconds()
        s.outcome = "answered"
        for other in list(s.offers):  # ring_all: the others stop ringing, not counted as missed
            self.media.send(s.worker, p.Hangup(other, 487))
            self._offer_ended(s, other, "answered_elsewhere")

    # --- secretaries: login, pause, state ---------------------------------------------------------

    def secretary(self, who: str) -> Secretary:
        secretary = self.queues.find(who)
        if secretary is None:
            raise UnknownSecretary(who)
        return secretary

    def login(self, who: str) -> Secretary:
        """She starts her shift: offered calls from now on while her softphone is registered."""
        secretary = self.secretary(who)
        if not secretary.logged_in:
            secretary.logged_in, secretary.missed = True, 0
            secretary.idle_since = self.reactor.seconds()
            logger.info("secretary %s logged in", secretary.id)
            self._save_secretaries()
            self._secretary_changed(secretary)
            self._dispatch()
        return secretary

    def logout(self, who: str) -> Secretary:
        """End of her shift: no new offer (a call she is on goes on). A fixed phone cannot log out:
        pause it instead."""
        secretary = self.secretary(who)
        if secretary.username is None:
            raise SecretaryStateError(f"{secretary.id} is a fixed phone: pause it instead of logging it out")
        if secretary.logged_in:
            secretary.logged_in = False
            logger.info("secretary %s logged out", secretary.id)
            self._save_secretaries()
            self._secretary_changed(secretary)
        return secretary

    def pause(self, who: str, reason: str) -> Secretary:
        secretary = self.secretary(who)
        secretary.paused, secretary.auto_paused = reason or "pause", False
        logger.info("secretary %s paused", secretary.id)
        self._save_secretaries()
        self._secretary_changed(secretary)
        return secretary

    def resume(self, secretary: Secretary | str) -> Secretary:
        """Back from a pause (hers, or the automatic one after missed offers): offered calls again."""
        secretary = self.secretary(secretary) if isinstance(secretary, str) else secretary
        secretary.paused, secretary.missed, secretary.auto_paused = None, 0, False
        self._save_secretaries()
        self._secretary_changed(secretary)
        self._dispatch()
        return secretary

    def secretary_view(self, secretary: Secretary) -> dict[str, Any]:
        return {"id": secretary.id, "username": secretary.username, "phone": secretary.uri, "state": secretary.state,
                "logged_in": secretary.logged_in, "registered": secretary.registered if secretary.username else None,
                "paused": secretary.paused, "missed_in_a_row": secretary.missed,
                "calls_today": secretary.calls_on(self._today(), LOCAL_DAY_ZONE), "levels": dict(secretary.levels)}

    def _secretary_changed(self, secretary: Secretary) -> None:
        self.events.secretary_changed(secretary.id, secretary.state, reason=secretary.paused if secretary.state == "paused" else None)
        self._count_secretaries()

    def _count_secretaries(self) -> None:
        counts = dict.fromkeys(SECRETARY_STATES, 0)
        for a in self.queues.secretaries():
            counts[a.state] = counts.get(a.state, 0) + 1
        for state, n in counts.items():
            self.metrics.secretaries.labels(state).set(n)

    def _save_secretaries(self) -> None:
        """Logins and pauses survive a restart (written atomically)."""
        path = self.settings.state_file
        if path is None:
            return
        state = {a.id: {"logged_in": a.logged_in, "paused": a.paused, "auto_paused": a.auto_paused}
                 for a in self.queues.secretaries()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, ensure_ascii=False, indent=1, sort_keys=True))
            os.replace(tmp, path)
        except OSError as exc:
            logger.error("cannot keep the secretaries' state in %s: %s", path, exc)

    def _restore_secretaries(self) -> None:
        path = self.settings.state_file
        if path is None or not path.exists():
            return
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            logger.error("ignoring unreadable secretaries' state %s: %s", path, exc)
            return
        for who, saved in state.items():
            secretary = self.queues.find(who)
            if secretary is None or not isinstance(saved, dict):
                continue
            if secretary.username is not None:
                secretary.logged_in = bool(saved.get("logged_in", secretary.logged_in))
            paused = saved.get("paused")
            secretary.paused = paused if isinstance(paused, str) and paused else None
            secretary.auto_paused = secretary.paused is not None and saved.get("auto_paused") is True

    def _overflow(self, s: CallSession, cause: str) -> None:
        if s.state is State.RINGING and s.offers:
            self._withdraw_offers(s, "overflow", missed=False)
        if self.queues.remove(s) is not None:
            self._queue_changed(s.waiting.practice, s.waiting.queue)
        for name in ("wait_max", "announce", "ring"):
            self._cancel(s, name)
        s.overflowed = True
        s.outcome = "overflow"
        self.metrics.overflows.labels(s.practice, cause).inc()
        logger.info("call %s overflows (%s)", s.call_id, cause)
        self._apply(s, overflow_decision(s.dialplan, s.call, self.now(), cause), detail=f"overflow on {cause}")

    # --- voicemail, callback, forward ---------------------------------------------------------------

    def _voicemail(self, s: CallSession, announce: str | None) -> None:
        s.state = State.VOICEMAIL
        path = self.settings.voicemail_dir / s.practice / f"{s.call_id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)

        def record() -> None:
            s.recording_started = self.now()
            self.media.send(s.worker, p.Record(s.leg, str(path.resolve()), self.settings.voicemail_max_s,
                                               self.settings.voicemail_silence_s, "#"))

        self._play(s, [announce or "voicemail_prompt", self.settings.beep_prompt], record)

    def _recording_finished(self, s: CallSession, ev: p.RecordingFinished) -> None:
        self.recorder.add_recording(s.call_id, ev.path, s.recording_started or self.now(), ev.duration, self.now())
        self.callbacks.create_from_voicemail(s, ev.duration)
        s.outcome = "voicemail"
        if ev.reason != "leg_ended":
            self._play(s, ["goodbye"], lambda: self._hangup(s, "voicemail"))

    def _callback_offer(self, s: CallSession, announce: str | None) -> None:
        s.outcome = s.outcome or "overflow"
        s.dialogue, say = callback_dialogue.offer(s.call.caller, announce)
        self._callback_said(s, say)

    def _callback_key(self, s: CallSession, ev: p.Digit) -> None:
        self._callback_step(s, ev.digit)

    def _callback_step(self, s: CallSession, key: str) -> None:
        """One key (or the digit timer's end) through the callback-number dialogue."""
        s.dialogue, out = callback_dialogue.step(s.dialogue, key)
        match out:
            case callback_dialogue.Say():
                self._cancel(s, "callback")
                self._stop_playing(s)
                self._callback_said(s, out)
            case callback_dialogue.Listen():
                self._stop_playing(s)
                self._timer(s, "callback", self.settings.callback_digit_timeout_s,
                            lambda: self._callback_step(s, callback_dialogue.TIMEOUT))
            case callback_dialogue.GiveUp():
                self._cancel(s, "callback")
                self._stop_playing(s)
                self._play(s, ["goodbye"], lambda: self._hangup(s, s.outcome or "overflow"))
            case callback_dialogue.Confirmed(number=number):
                self._cancel(s, "callback")
                self._stop_playing(s)
                self.callbacks.create_from_call(s, number)
                s.outcome = "callback_requested"
                s.state = State.ANNOUNCE
                self._play(s, ["callback_confirm"], lambda: self._hangup(s, "callback_requested"))

    def _callback_said(self, s: CallSession, say: callback_dialogue.Say) -> None:
        s.state = _DIALOGUE_STATES[type(s.dialogue)]
        self._play(s, list(say.prompts), lambda: self._timer(
            s, "callback", self.settings.callback_digit_timeout_s,
            lambda: self._callback_step(s, callback_dialogue.TIMEOUT)))

    def _forward(self, s: CallSession, destination: str) -> None:
        s.state = State.FORWARDING
        leg = f"{s.call_id[:12]}-f{next(self._seq)}"
        s.other_leg = leg
        self._other_legs[leg] = s
        uri = f"sip:{destination}@{self.settings.outbound_trunk}"
        self.media.send(s.worker, p.Dial(leg, uri, display_name=p.display_name(s.dialplan.name),
                                         headers={"X-Callrouter-Call-Id": s.call_id}))
        self.recorder.leg_started(s.call_id, leg, "on_call", mask_number(destination), self.now())
        self._loop(s, self.settings.ringback_prompt)

    # --- endings ----------------------------------------------------------------------------------

    def _other_leg_ended(self, s: CallSession, leg: str, ev: p.LegEnded) -> None:
        if leg in s.offers:
            # A dial our own worker could not place (no call slot left) is not her missed call:
            # the call waits a moment before the next offer instead of going round at once.
            ours = ev.by == "worker"
            self._offer_ended(s, leg, f"{ev.code} {ev.reason}".strip(), missed=ev.code in p.MISSED_CODES and not ours,
                              hold_back=ours)
            return
        if leg != s.other_leg:
            return
        if s.state is State.BRIDGED:
            self._other_legs.pop(leg, None)
            self.recorder.leg_ended(leg, f"{ev.code} {ev.reason}".strip(), self.now())
            s.other_leg = None
            wrap_up = s.dialplan.queues[s.waiting.queue].wrap_up_s if s.waiting else 0
            self._free_secretary(s.secretary, wrap_up)
            s.secretary = None
            self._hangup(s, "answered")
        elif s.state is State.FORWARDING:
            self._other_legs.pop(leg, None)
            s.other_leg = None
            self.recorder.leg_ended(leg, f"{ev.code}", self.now())
            s.outcome = "failed"
            self._play(s, ["overflow_message"], lambda: self._end(s, "failed", cause=f"forward_failed_{ev.code}"))

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
        self._end(s, outcome, hangup=False)
        if not awaiting_recording:  # else recording_finished, still to come, forgets the session
            self.sessions.pop(s.leg, None)

    def _hangup(self, s: CallSession, outcome: str) -> None:
        self._end(s, outcome, hangup=True)

    def _end(self, s: CallSession, outcome: str, hangup: bool = True, cause: str | None = None) -> None:
        """Close the call once: timers, queue place, the other leg, the secretary, the record."""
        if s.state is State.ENDED:
            return
        state_before = s.state
        s.state = State.ENDED
        for name in list(s.timers):
            self._cancel(s, name)
        if self.queues.remove(s) is not None:
            self._queue_changed(s.waiting.practice, s.waiting.queue)
        for leg in [*s.offers, *([s.other_leg] if s.other_leg else [])]:
            self.media.send(s.worker, p.Hangup(leg, 487))
            self._other_legs.pop(leg, None)
            self.recorder.leg_ended(leg, cause or "caller_ended", self.now())
        for secretary in s.offers.values():
            self._free_secretary(secretary, wrap_up=0)
        s.offers.clear()
        s.other_leg = None
        if state_before is State.BRIDGED:
            self._handled(s)
        if s.secretary is not None:
            wrap_up = s.dialplan.queues[s.waiting.queue].wrap_up_s if (s.waiting and state_before is State.BRIDGED) else 0
            self._free_secretary(s.secretary, wrap_up)
            s.secretary = None
        if hangup:
            self.media.send(s.worker, p.Hangup(s.leg, 480))
        self.recorder.close_call(s.call_id, outcome, self.now(), cause)
        self.events.call_ended(s.call_id, s.practice or "unknown", outcome, cause)
        self.metrics.calls.labels(s.practice or "unknown", outcome).inc()
        self.metrics.active_calls.dec()
        logger.info("call %s ended: %s%s", s.call_id, outcome, f" ({cause})" if cause else "")

    def _forget(self, s: CallSession, ev: Any) -> None:
        """The caller leg's end after we hung up ourselves."""
        self.sessions.pop(s.leg, None)

    def _late_recording(self, s: CallSession, ev: p.RecordingFinished) -> None:
        """The caller hung up while recording: store the message, then forget the call."""
        self.recorder.add_recording(s.call_id, ev.path, s.recording_started or self.now(), ev.duration, self.now())
        self.callbacks.create_from_voicemail(s, ev.duration)
        self.sessions.pop(s.leg, None)

    def _media_error(self, s: CallSession, ev: p.Error) -> None:
        """A prompt that cannot be played (missing file) must not leave the caller stuck: go on as
        if it had been played."""
        logger.error("call %s: media error on %s: %s", s.call_id, ev.command, ev.message)
        if ev.command == "play" and (s.play_queue or s.after_play):
            self._on_playback_finished(s, p.PlaybackFinished(s.leg, ""))

    def _ignore(self, s: CallSession, ev: Any) -> None:
        pass

    # --- alert calls: a practitioner connected to a live patient ------------------------------------
    # For callrouter.controller.alerts (the escalation's voice channel). `alerts` gets the events of
    # the legs this controller does not own (hooks in handle() and leg_lost()).

    alerts: Any = None
    ALERT_CONNECTABLE = frozenset({State.ANNOUNCE, State.IVR, State.QUEUED, State.CALLBACK, State.RINGING})

    def _alert_patient(self, call_id: str) -> CallSession | None:
        return next((s for s in self.sessions.values()
                     if s.call_id == call_id and s.state in self.ALERT_CONNECTABLE), None)

    def patient_busy(self, call_id: str) -> bool:
        """The patient of `call_id` is still on the line but with someone (a secretary, a forward,
        the voicemail): not to be called back now."""
        return any(s.call_id == call_id and s.state not in self.ALERT_CONNECTABLE and s.state is not State.ENDED
                   for s in self.sessions.values())

    def patient_worker(self, call_id: str) -> str | None:
        """The worker of call `call_id` while its patient could be connected to a practitioner
        (still on the line, talking to nobody): the alert call is dialled from it."""
        s = self._alert_patient(call_id)
        return s.worker if s is not None else None

    def connect_practitioner(self, call_id: str, worker: str, leg: str) -> bool:
        """Bridge the practitioner's answered leg `leg` (dialled on `worker`) with the patient of
        `call_id`; the leg becomes the call's other leg, so when either hangs up both are. False when
        the patient left, talks to someone, or is on another worker."""
        s = self._alert_patient(call_id)
        if s is None or s.worker != worker:
            return False
        for name in list(s.timers):
            self._cancel(s, name)
        waiting = self.queues.remove(s)
        if waiting is not None:
            self._queue_changed(waiting.practice, waiting.queue)
        s.play_queue, s.after_play = [], None
        s.state = State.BRIDGED  # first: offers withdrawn below must not put the call back in line
        for other in list(s.offers):
            self.media.send(s.worker, p.Hangup(other, 487))
            self._offer_ended(s, other, "practitioner_connected")
        s.waiting = None  # a practitioner's talk is not a secretary's handling time
        s.other_leg = leg
        self._other_legs[leg] = s
        self.media.send(s.worker, p.Bridge(s.leg, leg))
        s.bridged_at = self.reactor.seconds()
        s.outcome = "answered"
        self.recorder.leg_started(s.call_id, leg, "on_call", None, self.now())
        logger.info("call %s: connected to the practitioner its escalation alerted", s.call_id)
        return True


# The day a secretary's "calls today" counts over on her console (the secretariat works on French
# time), and the zone of a practice no dialplan describes any more.
LOCAL_DAY_ZONE = ZoneInfo("Europe/Paris")
COUNTS_KEPT = dt.timedelta(days=2)  # "today" in any practice's time zone falls within it


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


HOLD_BACK_S = 2.0  # before offering again a call our worker could not offer
DEFAULT_HANDLING_S = 180.0  # until a queue has history: a typical medical-secretariat call
HANDLING_WEIGHT = 0.2


POSITIONS_ANNOUNCED = 5  # "vous êtes le cinquième appel"; past it: "plus de 5 personnes attendent"


def position_prompt(position: int) -> str:
    if 1 <= position <= POSITIONS_ANNOUNCED:
        return f"queue_position_{position}"
    return f"queue_position_more_{POSITIONS_ANNOUNCED}" if position > POSITIONS_ANNOUNCED else "queue_position"


def wait_prompt(seconds: float) -> str:
    for limit, name in ((60, "wait_1"), (120, "wait_2"), (300, "wait_5"), (600, "wait_10")):
        if seconds <= limit:
            return name
    return "wait_long"


class _NoEvents:
    """Events off: every notification is dropped."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


_HANDLERS: dict[tuple[State, type], Callable[[CallController, CallSession, Any], None]] = {
    (State.IVR, p.Digit): CallController._ivr_digit,
    (State.ANNOUNCE, p.Digit): CallController._announce_digit,
    (State.CALLBACK, p.Digit): CallController._callback_key,
    (State.CALLBACK_NUMBER, p.Digit): CallController._callback_key,
    (State.CALLBACK_CONFIRM, p.Digit): CallController._callback_key,
    (State.VOICEMAIL, p.RecordingFinished): CallController._recording_finished,
    (State.ENDED, p.RecordingFinished): CallController._late_recording,
    (State.ENDED, p.LegEnded): CallController._forget,
    (State.ENDED, p.PlaybackFinished): CallController._ignore,
}
_DIALOGUE_STATES = {callback_dialogue.Offered: State.CALLBACK, callback_dialogue.Typing: State.CALLBACK_NUMBER,
                     callback_dialogue.Confirming: State.CALLBACK_CONFIRM, callback_dialogue.Ended: State.ANNOUNCE}
_ANY_STATE: dict[type, Callable[[CallController, CallSession, Any], None]] = {
    p.PlaybackFinished: CallController._on_playback_finished,
    p.Error: CallController._media_error,
    p.LegEnded: CallController._caller_ended,
}
