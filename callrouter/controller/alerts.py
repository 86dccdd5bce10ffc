"""Alert calls: the escalation's voice channel on the media plane.

One outgoing leg per `call` step: the practitioner's phone is dialled through the outbound trunk
(where forwarded calls go), and once answered hears, in French, the practice, the tier and the
patient's callback number digit by digit, then "tapez 1 pour accuser réception, tapez 2 pour être
mis en relation avec le patient", said `repeats` times at most.

Acknowledgement is explicit: only a key press acknowledges. A call not answered, busy, failed,
answered by a voicemail or hung up without a key is reported with its outcome and acknowledges
nothing. A call answered without a key is `no_key_pressed`: a voicemail answers like a person, so
only a key proves that someone heard the alert (`PERSON_REACHED`). Pressing 2 acknowledges and connects the practitioner to the patient: bridged with the
patient's own call when it is still live (the practitioner was dialled from the patient's worker
for that: pjsua's conference bridge is per worker process), else the patient is called back from
the practitioner's worker and both legs are bridged once the patient answers.

Each alert is an explicit state machine: `_HANDLERS[(state, event type)]`. Time goes through the
injected reactor (task.Clock in tests); media commands go through `AlertMedia` (the worker pool).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from twisted.internet import defer

from callrouter.domain.call import mask_number
from callrouter.domain.phone import national_digits
from callrouter.media import protocol as p

logger = logging.getLogger(__name__)

# What an alert call came to (the step's delivery outcome).
ACKNOWLEDGED = "acknowledged"        # 1 pressed
CONNECTED = "connected"              # 2 pressed: acknowledged, and connected to the patient
ANSWERED_NO_KEY = "no_key_pressed"  # answered (by a person or a voicemail), no key: not an ack
NO_ANSWER = "no_answer"
BUSY = "busy"
FAILED = "failed"                    # the trunk or the phone refused the call
CANCELLED = "cancelled"              # the chain was acknowledged another way meanwhile
ANSWERED = frozenset({ACKNOWLEDGED, CONNECTED, ANSWERED_NO_KEY})
# Outcomes that prove a person heard the alert: a key was pressed. A voicemail that recorded the
# message is not one (nor is a hang-up without a key).
PERSON_REACHED = frozenset({ACKNOWLEDGED, CONNECTED})

BUSY_CODES = frozenset({486, 600, 603})
NO_ANSWER_CODES = frozenset({408, 480, 487})
TIER_PROMPTS = {"vital": "alert_tier_vital", "urgent": "alert_tier_urgent"}
DIGIT_PROMPTS = {d: f"digit_{d}" for d in "0123456789"}


class AlertNotPlaced(Exception):
    """The call could not even be placed (no worker with room, the worker refused the dial)."""


class AlertMedia(Protocol):
    """What alerts need from the media plane (implemented by callrouter.media.pool.MediaPool)."""

    def pick(self, legs: int = 1) -> str | None: ...

    def dial(self, worker: str, command: p.Dial) -> None: ...

    def send(self, command: p.Command) -> None: ...


class LivePatients(Protocol):
    """What alerts need from the call controller (callrouter.controller.calls.CallController)."""

    def patient_worker(self, call_id: str) -> str | None: ...

    def patient_busy(self, call_id: str) -> bool: ...

    def connect_practitioner(self, call_id: str, worker: str, leg: str) -> bool: ...


@dataclass(frozen=True)
class AlertSettings:
    outbound_trunk: str                  # host:port: the practitioner is sip:<number>@trunk
    ring_timeout_s: float = 30.0
    digit_timeout_s: float = 6.0         # after each "tapez 1... tapez 2..."
    repeats: int = 3                     # how many times the message is said at most
    guard_s: float = 15.0                # after our own hang-up, how long to wait for the worker's word


@dataclass(frozen=True)
class AlertRequest:
    key: str                             # unique per (escalation, round, step): names the leg
    destination: str                     # the practitioner's number
    practice: str
    practice_name: str
    tier: str
    caller: str | None                   # the patient's number (callback), None when hidden
    call_id: str | None                  # the patient's call, to connect it while still live
    practice_prompt: str | None = None   # a WAV saying the practice's name (None: not said)


class AlertState(enum.Enum):
    DIALING = "dialing"          # the practitioner's phone rings
    SPEAKING = "speaking"        # the message plays
    AWAITING = "awaiting"        # the message was said: waiting for a key
    CLOSING = "closing"          # a last sentence, then we hang up
    CALLING_PATIENT = "calling_patient"  # 2 pressed, patient gone: calling the patient back
    CONNECTED = "connected"      # practitioner and patient (called back) bridged
    ENDED = "ended"


@dataclass(eq=False)
class Alert:
    request: AlertRequest
    worker: str
    leg: str
    acknowledge: Callable[[str], None]
    result: "defer.Deferred[str]"
    state: AlertState = AlertState.DIALING
    said: int = 0
    play_queue: list[str] = field(default_factory=list)
    after_play: Callable[[], None] | None = None
    timers: dict[str, Any] = field(default_factory=dict)
    patient_leg: str | None = None
    outcome: str | None = None
    end_code: int | None = None
    redialled: bool = False


def message_prompts(request: AlertRequest) -> list[str | tuple[str]]:
    """What the practitioner hears, in order: prompt names, and `(path,)` for the practice name."""
    out: list[str | tuple[str]] = ["alert_intro"]
    if request.practice_prompt:
        out.append((request.practice_prompt,))
    out.append(TIER_PROMPTS.get(request.tier, "alert_tier_other"))
    digits = national_digits(request.caller)
    if digits:
        out.append("alert_callback_number")
        out += [DIGIT_PROMPTS[d] for d in digits]
    else:
        out.append("alert_number_hidden")
    out.append("alert_menu")
    return out


class AlertCalls:
    """Places alert calls and runs each one; gets the events of the legs it dialled."""

    ACK_DIGIT, CONNECT_DIGIT = "1", "2"

    def __init__(self, reactor: Any, media: AlertMedia, prompt_path: Callable[[str, str | None], str],
                 settings: AlertSettings, patients: LivePatients | None = None) -> None:
        self.reactor = reactor
        self.media = media
        self._prompt_path = prompt_path
        self.settings = settings
        self.patients = patients
        self._alerts: dict[str, Alert] = {}   # practitioner's leg -> alert
        self._patients: dict[str, Alert] = {}  # patient's called-back leg -> alert

    # --- placing ---------------------------------------------------------------------------------

    def place(self, request: AlertRequest, acknowledge: Callable[[str], None]) -> "defer.Deferred[str]":
        """Dial the practitioner; fires with the outcome (ACKNOWLEDGED... FAILED) as soon as it is
        known, or fails with AlertNotPlaced. `acknowledge(digit)` is called once, when 1 or 2 is
        pressed, before the result fires."""
        leg = f"alert-{request.key}"
        if leg in self._alerts:
            return defer.fail(AlertNotPlaced(f"an alert call {request.key} is already under way"))
        worker = None
        if request.call_id and self.patients is not None:
            worker = self.patients.patient_worker(request.call_id)  # to bridge with it if 2 is pressed
        try:
            try:
                worker = self._dial(request, worker, leg)
            except AlertNotPlaced:
                if worker is None:
                    raise
                worker = self._dial(request, None, leg)  # the patient's worker is full or down
        except AlertNotPlaced as exc:
            return defer.fail(exc)
        alert = Alert(request, worker, leg, acknowledge, defer.Deferred())
        self._alerts[leg] = alert
        self._timer(alert, "ring", self.settings.ring_timeout_s, lambda: self._ring_timeout(alert))
        logger.info("alert %s: calling %s on %s", request.key, mask_number(request.destination), worker)
        return alert.result

    def _dial(self, request: AlertRequest, worker: str | None, leg: str) -> str:
        """Dial the practitioner on `worker` (None: the least loaded with room for a patient called
        back too); the worker used, or AlertNotPlaced."""
        worker = worker or self.media.pick(2)
        if worker is None:
            raise AlertNotPlaced("no media worker has room for the call")
        dial = p.Dial(leg, f"sip:{request.destination}@{self.settings.outbound_trunk}",
                      display_name=p.display_name(request.practice_name),
                      headers={"X-Callrouter-Alert": request.key},
                      timeout_seconds=min(600.0, self.settings.ring_timeout_s + 5))
        try:
            self.media.dial(worker, dial)
        except (LookupError, ValueError) as exc:
            raise AlertNotPlaced(str(exc)) from None
        return worker

    def active(self) -> list[str]:
        return sorted(a.request.key for a in self._alerts.values())

    def cancel(self, key: str) -> bool:
        """The chain was acknowledged another way (link, SMS, console): a phone still ringing stops,
        a practitioner hearing the message is told it is taken care of; one who already pressed a
        key goes on. True if the call was stopped."""
        a = next((a for a in self._alerts.values() if a.request.key == key), None)
        if a is None or a.outcome is not None:
            return False
        a.outcome = CANCELLED
        if a.state is AlertState.DIALING:
            self._hangup(a, code=487)
        elif a.state in (AlertState.SPEAKING, AlertState.AWAITING):
            self._cancel(a, "key")
            self._stop_playing(a)
            self._close(a, "alert_already_acknowledged")
        logger.info("alert %s: the chain was acknowledged meanwhile: call stopped", key)
        return True

    # --- events (the controller's hook passes what is not its own) --------------------------------

    def handle(self, worker: str, event: Any) -> bool:
        """One media event; True if it was about one of our legs."""
        leg = getattr(event, "leg", "")
        alert = self._alerts.get(leg)
        if alert is not None:
            handler = _HANDLERS.get((alert.state, type(event))) or _ANY_STATE.get(type(event))
            if handler is not None:
                handler(self, alert, event)
            return True
        alert = self._patients.get(leg)
        if alert is not None:
            self._patient_event(alert, event)
            return True
        return False

    def leg_lost(self, worker: str, leg: str, cause: str) -> bool:
        """A leg vanished with its worker: as if it had ended."""
        if leg in self._alerts or leg in self._patients:
            return self.handle(worker, p.LegEnded(leg, 500, cause, "worker"))
        return False

    # --- the practitioner's leg --------------------------------------------------------------------

    def _answered(self, a: Alert, ev: p.LegState) -> None:
        if ev.state != "confirmed":
            return
        self._cancel(a, "ring")
        logger.info("alert %s: answered", a.request.key)
        self._say_message(a)

    def _say_message(self, a: Alert) -> None:
        a.state = AlertState.SPEAKING
        a.said += 1
        paths = [item[0] if isinstance(item, tuple) else self._path(a, item) for item in message_prompts(a.request)]
        self._play(a, paths, lambda: self._await_key(a))

    def _await_key(self, a: Alert) -> None:
        a.state = AlertState.AWAITING
        self._timer(a, "key", self.settings.digit_timeout_s, lambda: self._no_key(a))

    def _no_key(self, a: Alert) -> None:
        if a.said < self.settings.repeats:
            self._say_message(a)
            return
        logger.info("alert %s: answered, no key pressed after %d message(s) (a voicemail, or nobody "
                    "listening): not counted as reaching the practitioner", a.request.key, a.said)
        a.outcome = ANSWERED_NO_KEY
        self._close(a, "alert_goodbye")

    def _digit(self, a: Alert, ev: p.Digit) -> None:
        if ev.digit not in (self.ACK_DIGIT, self.CONNECT_DIGIT):
            return
        self._cancel(a, "key")
        self._stop_playing(a)
        connect = ev.digit == self.CONNECT_DIGIT
        a.outcome = CONNECTED if connect else ACKNOWLEDGED
        logger.info("alert %s: %s pressed", a.request.key, ev.digit)
        try:
            a.acknowledge(ev.digit)
        except Exception:
            logger.exception("alert %s: recording the acknowledgement failed", a.request.key)
        self._report(a, a.outcome)
        if not connect:
            self._close(a, "alert_ack_confirm")
        elif not national_digits(a.request.caller) and not self._patient_live(a):
            self._close(a, "alert_no_number")
        else:
            a.state = AlertState.CLOSING  # ignore further keys while the sentence plays
            self._play(a, [self._path(a, "alert_connecting")], lambda: self._connect(a))

    def _close(self, a: Alert, prompt: str) -> None:
        a.state = AlertState.CLOSING
        self._play(a, [self._path(a, prompt)], lambda: self._hangup(a))

    def _ring_timeout(self, a: Alert) -> None:
        if a.state is AlertState.DIALING:
            a.outcome = NO_ANSWER
            self._hangup(a, code=487)

    def _hangup(self, a: Alert, code: int = 480) -> None:
        """Hang up the practitioner (and a patient called back); the worker's leg_ended ends it."""
        self._send(p.Hangup(a.leg, code))
        if a.patient_leg is not None:
            self._send(p.Hangup(a.patient_leg, 487))
        self._timer(a, "guard", self.settings.guard_s, lambda: self._finish(a, "no word from the worker"))

    def _practitioner_ended(self, a: Alert, ev: p.LegEnded) -> None:
        if a.state is AlertState.DIALING and a.outcome is None:
            if ev.by == "worker" and ev.code == 486 and not a.redialled and self._redial(a):
                return  # the patient's worker had no call slot left: placed on another one
            if ev.by == "worker":
                self._fail(a, AlertNotPlaced(f"the media worker could not place the call ({ev.code} {ev.reason})"))
                return
            a.outcome = BUSY if ev.code in BUSY_CODES else NO_ANSWER if ev.code in NO_ANSWER_CODES else FAILED
        elif a.outcome is None:
            a.outcome = ANSWERED_NO_KEY  # hung up, or a voicemail that heard the message
            logger.info("alert %s: hung up after answering, no key pressed (a voicemail, or a hang-up): "
                        "not counted as reaching the practitioner", a.request.key)
        a.end_code = ev.code
        if a.patient_leg is not None:
            self._send(p.Hangup(a.patient_leg, 487))
            self._patients.pop(a.patient_leg, None)
        self._finish(a, f"{ev.code} {ev.reason}".strip())

    def _redial(self, a: Alert) -> bool:
        """Once: the same call on the least loaded worker (it cannot be bridged with the patient's
        call then; a 2 calls the patient back). False if no other worker has room."""
        a.redialled = True
        other = self.media.pick(2)
        if other is None or other == a.worker:
            return False
        self._alerts.pop(a.leg, None)
        leg = f"{a.leg}-r"
        try:
            self._dial(a.request, other, leg)
        except AlertNotPlaced:
            return False
        a.worker, a.leg = other, leg
        self._alerts[leg] = a
        logger.info("alert %s: worker full, calling again on %s", a.request.key, other)
        return True

    def _on_playback_finished(self, a: Alert, ev: Any) -> None:
        if a.play_queue:
            self._send(p.Play(a.leg, a.play_queue.pop(0)))
            return
        then, a.after_play = a.after_play, None
        if then is not None:
            then()

    def _media_error(self, a: Alert, ev: p.Error) -> None:
        """A prompt that cannot be played must not stall the alert: go on as if played."""
        logger.error("alert %s: media error on %s: %s", a.request.key, ev.command, ev.message)
        if ev.command == "play" and (a.play_queue or a.after_play):
            self._on_playback_finished(a, ev)

    def _ignore(self, a: Alert, ev: Any) -> None:
        pass

    # --- 2 pressed: the patient ------------------------------------------------------------------

    def _patient_live(self, a: Alert) -> bool:
        return bool(a.request.call_id and self.patients is not None
                    and self.patients.patient_worker(a.request.call_id) == a.worker)

    def _connect(self, a: Alert) -> None:
        call_id = a.request.call_id
        if call_id and self.patients is not None and self.patients.connect_practitioner(call_id, a.worker, a.leg):
            logger.info("alert %s: practitioner connected to the patient's call %s", a.request.key, call_id)
            self._forget(a)  # the controller owns the leg now: its end hangs up the patient
            return
        if call_id and self.patients is not None and (self.patients.patient_busy(call_id)
                                                      or self.patients.patient_worker(call_id) is not None):
            # Talking to a secretary, or waiting on another worker: not called over that call.
            self._close(a, "alert_patient_busy")
            return
        if not national_digits(a.request.caller):
            self._close(a, "alert_no_number")
            return
        a.state = AlertState.CALLING_PATIENT
        a.patient_leg = f"{a.leg}-p"
        self._patients[a.patient_leg] = a
        dial = p.Dial(a.patient_leg, f"sip:{a.request.caller}@{self.settings.outbound_trunk}",
                      display_name=p.display_name(a.request.practice_name),
                      headers={"X-Callrouter-Alert": a.request.key},
                      timeout_seconds=min(600.0, self.settings.ring_timeout_s + 5))
        try:
            self.media.dial(a.worker, dial)
        except (LookupError, ValueError) as exc:
            logger.warning("alert %s: cannot call the patient back: %s", a.request.key, exc)
            self._patients.pop(a.patient_leg, None)
            a.patient_leg = None
            self._close(a, "alert_patient_unreachable")
            return
        logger.info("alert %s: calling the patient back (%s)", a.request.key, mask_number(a.request.caller))
        self._loop(a, self._path(a, "ringback"))
        self._timer(a, "patient_ring", self.settings.ring_timeout_s, lambda: self._patient_no_answer(a))

    def _patient_event(self, a: Alert, ev: Any) -> None:
        if isinstance(ev, p.LegState) and ev.state == "confirmed" and a.state is AlertState.CALLING_PATIENT:
            self._cancel(a, "patient_ring")
            a.state = AlertState.CONNECTED
            a.play_queue, a.after_play = [], None
            self._send(p.Bridge(a.leg, a.patient_leg))
            logger.info("alert %s: practitioner and patient connected", a.request.key)
        elif isinstance(ev, p.LegEnded):
            self._patients.pop(ev.leg, None)
            a.patient_leg = None
            if a.state is AlertState.CALLING_PATIENT:
                self._cancel(a, "patient_ring")
                self._close(a, "alert_patient_unreachable")
            elif a.state is AlertState.CONNECTED:
                self._hangup(a)

    def _patient_no_answer(self, a: Alert) -> None:
        if a.state is AlertState.CALLING_PATIENT and a.patient_leg is not None:
            self._send(p.Hangup(a.patient_leg, 487))  # its leg_ended closes with "unreachable"

    # --- endings ---------------------------------------------------------------------------------

    def _report(self, a: Alert, outcome: str) -> None:
        if not a.result.called:
            a.result.callback(outcome)

    def _fail(self, a: Alert, exc: Exception) -> None:
        self._forget(a)
        if not a.result.called:
            a.result.errback(exc)

    def _finish(self, a: Alert, detail: str) -> None:
        if a.state is AlertState.ENDED:
            return
        outcome = a.outcome or FAILED
        logger.info("alert %s ended: %s (%s)", a.request.key, outcome, detail)
        self._forget(a)
        self._report(a, outcome)

    def _forget(self, a: Alert) -> None:
        a.state = AlertState.ENDED
        for name in list(a.timers):
            self._cancel(a, name)
        self._alerts.pop(a.leg, None)
        if a.patient_leg is not None:
            self._patients.pop(a.patient_leg, None)

    # --- plumbing --------------------------------------------------------------------------------

    def _path(self, a: Alert, name: str) -> str:
        return str(self._prompt_path(name, a.request.practice or None))

    def _play(self, a: Alert, paths: list[str], then: Callable[[], None] | None) -> None:
        a.play_queue, a.after_play = paths[1:], then
        self._send(p.Play(a.leg, paths[0]))

    def _loop(self, a: Alert, path: str) -> None:
        a.play_queue, a.after_play = [], None
        self._send(p.Play(a.leg, path, loop=True))

    def _stop_playing(self, a: Alert) -> None:
        a.play_queue, a.after_play = [], None
        self._send(p.StopPlayback(a.leg))

    def _send(self, command: p.Command) -> None:
        try:
            self.media.send(command)
        except (LookupError, ValueError) as exc:
            logger.info("alert command %s not sent: %s", command.type, exc)

    def _timer(self, a: Alert, name: str, seconds: float, fn: Callable[[], None]) -> None:
        self._cancel(a, name)
        a.timers[name] = self.reactor.callLater(seconds, self._fire, a, name, fn)

    def _fire(self, a: Alert, name: str, fn: Callable[[], None]) -> None:
        a.timers.pop(name, None)
        if a.state is not AlertState.ENDED:
            fn()

    def _cancel(self, a: Alert, name: str) -> None:
        t = a.timers.pop(name, None)
        if t is not None and t.active():
            t.cancel()


_HANDLERS: dict[tuple[AlertState, type], Callable[[AlertCalls, Alert, Any], None]] = {
    (AlertState.DIALING, p.LegState): AlertCalls._answered,
    (AlertState.SPEAKING, p.Digit): AlertCalls._digit,
    (AlertState.AWAITING, p.Digit): AlertCalls._digit,
}
_ANY_STATE: dict[type, Callable[[AlertCalls, Alert, Any], None]] = {
    p.PlaybackFinished: AlertCalls._on_playback_finished,
    p.Error: AlertCalls._media_error,
    p.LegEnded: AlertCalls._practitioner_ended,
    p.Digit: AlertCalls._ignore,
    p.LegState: AlertCalls._ignore,
}
