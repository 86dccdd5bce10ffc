"""Alert calls: the escalation's voice channel on the media plane.

One outgoing leg per `call` step: the practitioner's phone is dialled through the outbound trunk
(where forwarded calls go), and once answered hears, in French, the practice, the tier and the
patient's callback number digit by digit, then "tapez 1 pour accuser réception, tapez 2 pour être
mis en relation avec le patient", said `repeats` times at most.

Acknowledgement is explicit: only a key press acknowledges. A call not answered, busy, failed,
answered by a voicemail or hung up without a key is reported with its outcome and acknowledges
nothing. A call answered without a key is `no_key_pressed`: a voicemail answers like a person, so
only a key proves that someone heard the alert (`PERSON_REACHED`). Pressing 2 acknowledges and
connects the practitioner to the patient: bridged with the patient's own call when it is still live
(the practitioner was dialled from the patient's worker for that: pjsua's conference bridge is per
worker process), else the patient is called back from the practitioner's worker and both legs are
bridged once the patient answers.

Each alert is an explicit state machine: `_HANDLERS[(state, event type)]` over the states and
the session of callrouter.controller.alert_session. Prompts go through the shared PromptPlayer and
timeouts through SessionTimers (callrouter.controller.player) on the injected reactor (task.Clock in
tests); media commands go through `AlertMedia` (the worker pool). The escalation's voice channel
places alerts through `place` and `cancel` (its AlertPlacer port) with the vocabulary of
callrouter.domain.alert_call, re-exported here.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, MutableMapping

from twisted.internet import defer

from callrouter.controller.alert_session import (
    BUSY_CODES, NO_ANSWER_CODES, Alert, AlertMedia, AlertSettings, AlertState, LivePatients, dial_command,
    message_prompts,
)
from callrouter.controller.legs import LegRouter
from callrouter.controller.player import PromptPlayer, SessionTimers
from callrouter.domain.alert_call import (  # the vocabulary the escalation's voice channel shares
    ACKNOWLEDGED, ANSWERED, ANSWERED_NO_KEY, BUSY, CANCELLED, CONNECTED, FAILED, NO_ANSWER, PERSON_REACHED,
    AlertNotPlaced, AlertRequest,
)
from callrouter.domain.call import mask_number
from callrouter.domain.phone import national_digits
from callrouter.media import protocol as p

logger = logging.getLogger(__name__)

__all__ = [
    "ACKNOWLEDGED", "ANSWERED", "ANSWERED_NO_KEY", "BUSY", "CANCELLED", "CONNECTED", "FAILED", "NO_ANSWER",
    "PERSON_REACHED", "Alert", "AlertCalls", "AlertMedia", "AlertNotPlaced", "AlertRequest", "AlertSettings",
    "AlertState", "LivePatients", "message_prompts", "national_digits",
]


class AlertCalls:
    """Places alert calls and runs each one; gets the events of the legs it dialled."""

    ACK_DIGIT, CONNECT_DIGIT = "1", "2"

    def __init__(self, reactor: Any, media: AlertMedia, prompt_path: Callable[[str, str | None], str],
                 settings: AlertSettings, patients: LivePatients | None = None, legs: LegRouter | None = None) -> None:
        """`legs`: the leg router the alerts' legs are registered with (None: events come to `handle`)."""
        self.reactor = reactor
        self.media = media
        self._prompt_path = prompt_path
        self.settings = settings
        self.patients = patients
        self._alerts: MutableMapping[str, Alert] = legs.owned_by(self) if legs else {}   # practitioner's leg -> alert
        self._patients: MutableMapping[str, Alert] = legs.owned_by(self) if legs else {}  # patient's called-back leg -> alert

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
        alert = Alert(request, worker, leg, acknowledge, defer.Deferred(), PromptPlayer(self._send, leg),
                      SessionTimers(self.reactor))
        self._alerts[leg] = alert
        alert.timers.start("ring", self.settings.ring_timeout_s, lambda: self._ring_timeout(alert))
        logger.info("alert %s: calling %s on %s", request.key, mask_number(request.destination), worker)
        return alert.result

    def _dial(self, request: AlertRequest, worker: str | None, leg: str) -> str:
        """Dial the practitioner on `worker` (None: the least loaded with room for a patient called
        back too); the worker used, or AlertNotPlaced."""
        worker = worker or self.media.pick(2)
        if worker is None:
            raise AlertNotPlaced("no media worker has room for the call")
        try:
            self.media.dial(worker, dial_command(leg, request.destination, request, self.settings))
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
            a.timers.cancel("key")
            a.player.stop(always=True)
            self._close(a, "alert_already_acknowledged")
        logger.info("alert %s: the chain was acknowledged meanwhile: call stopped", key)
        return True

    # --- events (from the leg router) ---------------------------------------------------------------

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
        a.timers.cancel("ring")
        logger.info("alert %s: answered", a.request.key)
        self._say_message(a)

    def _say_message(self, a: Alert) -> None:
        a.state = AlertState.SPEAKING
        a.said += 1
        paths = [item[0] if isinstance(item, tuple) else self._path(a, item) for item in message_prompts(a.request)]
        a.player.play(paths, lambda: self._await_key(a))

    def _await_key(self, a: Alert) -> None:
        a.state = AlertState.AWAITING
        a.timers.start("key", self.settings.digit_timeout_s, lambda: self._no_key(a))

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
        a.timers.cancel("key")
        a.player.stop(always=True)
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
            a.player.play([self._path(a, "alert_connecting")], lambda: self._connect(a))

    def _close(self, a: Alert, prompt: str) -> None:
        a.state = AlertState.CLOSING
        a.player.play([self._path(a, prompt)], lambda: self._hangup(a))

    def _ring_timeout(self, a: Alert) -> None:
        if a.state is AlertState.DIALING:
            a.outcome = NO_ANSWER
            self._hangup(a, code=487)

    def _hangup(self, a: Alert, code: int = 480) -> None:
        """Hang up the practitioner (and a patient called back); the worker's leg_ended ends it."""
        self._send(p.Hangup(a.leg, code))
        if a.patient_leg is not None:
            self._send(p.Hangup(a.patient_leg, 487))
        a.timers.start("guard", self.settings.guard_s, lambda: self._finish(a, "no word from the worker"))

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
        a.player.leg = leg
        self._alerts[leg] = a
        logger.info("alert %s: worker full, calling again on %s", a.request.key, other)
        return True

    def _on_playback_finished(self, a: Alert, ev: Any) -> None:
        a.player.finished()

    def _media_error(self, a: Alert, ev: p.Error) -> None:
        """A prompt that cannot be played must not stall the alert: go on as if played."""
        logger.error("alert %s: media error on %s: %s", a.request.key, ev.command, ev.message)
        a.player.failed(ev.command)

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
        try:
            self.media.dial(a.worker, dial_command(a.patient_leg, a.request.caller, a.request, self.settings))
        except (LookupError, ValueError) as exc:
            logger.warning("alert %s: cannot call the patient back: %s", a.request.key, exc)
            self._patients.pop(a.patient_leg, None)
            a.patient_leg = None
            self._close(a, "alert_patient_unreachable")
            return
        logger.info("alert %s: calling the patient back (%s)", a.request.key, mask_number(a.request.caller))
        a.player.loop(self._path(a, "ringback"))
        a.timers.start("patient_ring", self.settings.ring_timeout_s, lambda: self._patient_no_answer(a))

    def _patient_event(self, a: Alert, ev: Any) -> None:
        if isinstance(ev, p.LegState) and ev.state == "confirmed" and a.state is AlertState.CALLING_PATIENT:
            a.timers.cancel("patient_ring")
            a.state = AlertState.CONNECTED
            a.player.forget()
            self._send(p.Bridge(a.leg, a.patient_leg))
            logger.info("alert %s: practitioner and patient connected", a.request.key)
        elif isinstance(ev, p.LegEnded):
            self._patients.pop(ev.leg, None)
            a.patient_leg = None
            if a.state is AlertState.CALLING_PATIENT:
                a.timers.cancel("patient_ring")
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
        a.timers.close()
        self._alerts.pop(a.leg, None)
        if a.patient_leg is not None:
            self._patients.pop(a.patient_leg, None)

    # --- plumbing --------------------------------------------------------------------------------

    def _path(self, a: Alert, name: str) -> str:
        return str(self._prompt_path(name, a.request.practice or None))

    def _send(self, command: p.Command) -> None:
        try:
            self.media.send(command)
        except (LookupError, ValueError) as exc:
            logger.info("alert command %s not sent: %s", command.type, exc)


def _ignore(calls: AlertCalls, a: Alert, ev: Any) -> None:
    """An event that changes nothing in this state (a key while the last sentence plays...)."""


_HANDLERS: dict[tuple[AlertState, type], Callable[[AlertCalls, Alert, Any], None]] = {
    (AlertState.DIALING, p.LegState): AlertCalls._answered,
    (AlertState.SPEAKING, p.Digit): AlertCalls._digit,
    (AlertState.AWAITING, p.Digit): AlertCalls._digit,
}
_ANY_STATE: dict[type, Callable[[AlertCalls, Alert, Any], None]] = {
    p.PlaybackFinished: AlertCalls._on_playback_finished,
    p.Error: AlertCalls._media_error,
    p.LegEnded: AlertCalls._practitioner_ended,
    p.Digit: _ignore,
    p.LegState: _ignore,
}
