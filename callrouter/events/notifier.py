"""What the controller tells the outside world about calls, queues and secretaries.

One method per moment of a call; each picks the topic, the QoS and the retain flag, so the
controller never has to. Payloads are JSON dicts with `v` (schema version) and `at` (ISO time
from the injected clock). The caller's number appears only in the screen-pop; the call state
carries it masked.

One source of truth, several transports: every event goes to the MQTT publisher and then to each
sink in `also` (the console's server-sent events, callrouter.web.sse), with the same topic and
payload; a sink that fails is logged and the others still get the event. Nothing here raises into the controller: the publisher takes what it is given
and a failure to build a payload is logged and dropped.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any, Callable, Mapping, Protocol, Sequence

from callrouter.domain.call import mask_number
from callrouter.domain.model import Dialplan
from callrouter.domain.serving import SECRETARY_STATES
from callrouter.events import card, topics
from callrouter.ports import Clock, utc_from_clock

logger = logging.getLogger(__name__)

CALL_STATES = ("arrived", "ivr", "queued", "offered", "answered", "ended")


class Publishes(Protocol):
    def publish(self, topic: str, payload: Mapping[str, Any] | None, retain: bool = False, qos: int = 0) -> None: ...


def _never_raises(method: Callable) -> Callable:
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception:
            logger.exception("event %s not published", method.__name__)
    return wrapper


class EventNotifier:
    def __init__(self, publisher: Publishes, node: str, clock: Clock, also: Sequence[Publishes] = ()):
        self.publisher = publisher
        self._sinks = (publisher, *also)
        self.node = node
        self.clock = clock
        self._cards: dict[str, str] = {}  # practice -> dialplan version of the card published

    def _at(self) -> str:
        return utc_from_clock(self.clock).isoformat(timespec="seconds")

    # --- practices ------------------------------------------------------------------------------

    @_never_raises
    def practices_loaded(self, dialplans: Mapping[str, Dialplan]) -> None:
        """After each (re)load of the dialplans: publish the cards that changed, clear the cards of
        practices that are gone."""
        for practice in [p for p in self._cards if p not in dialplans]:
            self.practice_removed(practice)
        for dialplan in dialplans.values():
            if self._cards.get(dialplan.practice) != dialplan.version:
                self.practice_loaded(dialplan)

    @_never_raises
    def practice_loaded(self, dialplan: Dialplan) -> None:
        """Retained card; call for each practice after every (re)load of the dialplans."""
        self._publish(topics.practice_card(self.node, dialplan.practice), card.practice_card(dialplan),
                               retain=True, qos=1)
        self._cards[dialplan.practice] = dialplan.version

    @_never_raises
    def practice_removed(self, practice: str) -> None:
        """Clears the retained card of a practice whose dialplan is gone."""
        self._publish(topics.practice_card(self.node, practice), None, retain=True, qos=1)
        self._cards.pop(practice, None)

    # --- a call's life ------------------------------------------------------------------------------

    @_never_raises
    def call_arrived(self, call_id: str, practice: str, caller: str | None, site: str | None = None) -> None:
        self._call(call_id, practice, "arrived", caller=mask_number(caller), site=site)

    @_never_raises
    def call_in_ivr(self, call_id: str, practice: str, menu: str) -> None:
        self._call(call_id, practice, "ivr", menu=menu)

    @_never_raises
    def call_queued(self, call_id: str, practice: str, queue: str, reason: str | None = None,
                    tier: str | None = None) -> None:
        self._call(call_id, practice, "queued", queue=queue, reason=reason, tier=tier)

    @_never_raises
    def call_offered(self, dialplan: Dialplan, *, call_id: str, secretary_uri: str, caller: str | None,
                     calls_today: int, site: str | None = None, queue: str | None = None,
                     reason: str | None = None, tier: str | None = None,
                     ivr_answers: Sequence[tuple[str, str]] = (), console_url: str | None = None) -> None:
        """The offer, before the secretary's phone rings: screen-pop first (QoS 1), then her state
        (ringing) and the call's (offered)."""
        secretary = topics.secretary_id(secretary_uri)
        at = utc_from_clock(self.clock)
        self.offer_made(card.screen_pop(dialplan, call_id=call_id, at=at, secretary=secretary, caller=caller,
                                        calls_today=calls_today, site=site, queue=queue, reason=reason, tier=tier,
                                        ivr_answers=ivr_answers, console_url=console_url))

    @_never_raises
    def offer_made(self, pop: dict[str, Any]) -> None:
        """An offer whose screen-pop (callrouter.events.card.screen_pop) is built already: the pop
        (QoS 1), then the secretary's state (ringing) and the call's (offered)."""
        secretary, call_id, practice = pop["secretary"], pop["call_id"], pop["practice"]
        self._publish(topics.screen_pop(self.node, secretary), pop, qos=1)
        self._secretary(secretary, "ringing", call_id=call_id, practice=practice)
        self._call(call_id, practice, "offered", secretary=secretary, queue=(pop.get("queue") or {}).get("id"))

    @_never_raises
    def call_answered(self, call_id: str, practice: str, secretary_uri: str, waited_s: float | None = None) -> None:
        secretary = topics.secretary_id(secretary_uri)
        self._secretary(secretary, "on_call", call_id=call_id, practice=practice)
        self._call(call_id, practice, "answered", secretary=secretary,
                   waited_s=round(waited_s, 1) if waited_s is not None else None)

    @_never_raises
    def call_transfer(self, call_id: str, practice: str, state: str, *, from_secretary: str, to_secretary: str,
                      by: str | None = None, cause: str | None = None) -> None:
        """A call handed from one secretary to a colleague: `transferring`, then `transferred` (she
        took it) or `transfer_failed` (back to the first one, with the cause)."""
        self._call(call_id, practice, state, secretary=topics.secretary_id(from_secretary),
                   to=topics.secretary_id(to_secretary), by=by, cause=cause)

    @_never_raises
    def call_ended(self, call_id: str, practice: str, outcome: str, cause: str | None = None) -> None:
        self._call(call_id, practice, "ended", outcome=outcome, cause=cause)

    # --- queues and secretaries -------------------------------------------------------------------------

    @_never_raises
    def queue_changed(self, practice: str, queue: str, waiting: int, longest_wait_s: float) -> None:
        """Retained; call after every change of a queue (a call in, out, offered, put back)."""
        self._publish(topics.queue(self.node, practice, queue), {
            "v": 1, "at": self._at(), "practice": practice, "queue": queue, "waiting": waiting,
            "longest_wait_s": round(max(0.0, longest_wait_s), 1)}, retain=True, qos=1)

    @_never_raises
    def secretary_changed(self, secretary_uri: str, state: str, reason: str | None = None,
                          by: str | None = None) -> None:
        """Retained; `reason` says why for `paused` (pause déjeuner...) and `offline`; `by` who
        made the change (a user's name, or "system:<cause>"), when someone did."""
        self._secretary(topics.secretary_id(secretary_uri), state, reason=reason, by=by)

    @_never_raises
    def team_changed(self, version: int) -> None:
        """Retained; the team (coverage, skill levels, pause reasons) changed: read it again."""
        self._publish(topics.team(self.node), {"v": 1, "at": self._at(), "type": "team_changed",
                                               "version": version}, retain=True, qos=1)

    # --- callback tasks ---------------------------------------------------------------------------

    @_never_raises
    def task_changed(self, task: Any) -> None:
        """A callback task created or changed (a callrouter.domain.tasks.TaskView): its id, state
        and source, never the patient's number."""
        self._publish(topics.practice_tasks(self.node, task.practice), {
            "v": 1, "at": self._at(), "type": "task", "practice": task.practice, "task_id": task.id,
            "state": task.state, "source": task.source, "assigned_to": task.assigned_to}, qos=1)

    # --- escalations ------------------------------------------------------------------------------

    @_never_raises
    def escalation_changed(self, escalation_id: int, practice: str) -> None:
        """A chain's stored state changed (callrouter.store.escalations announces each change)."""
        self._publish(topics.escalation_changed(self.node, practice), {
            "v": 1, "at": self._at(), "type": "escalation_changed", "escalation_id": escalation_id,
            "practice": practice}, qos=1)

    @_never_raises
    def escalation_exhausted(self, *, escalation_id: int, reference: str, practice: str, tier: str,
                             call_id: str | None, caller: str | None, started_at: dt.datetime,
                             steps_sent: int, declined_by: Sequence[str] = (),
                             duty_alerts: Sequence[str] = ()) -> None:
        """A chain ran out with nobody acknowledging: the supervisors must find someone. The
        caller's number is masked; `duty_alerts` names the channels the duty contact is alerted by."""
        self._publish(topics.escalation_exhausted(self.node, practice), {
            "v": 1, "at": self._at(), "type": "escalation_exhausted", "escalation_id": escalation_id,
            "reference": reference, "practice": practice, "tier": tier, "call_id": call_id,
            "caller": mask_number(caller), "started_at": started_at.isoformat(timespec="seconds"),
            "steps_sent": steps_sent, "declined_by": list(declined_by), "duty_alerts": list(duty_alerts)},
            qos=1)

    # --- the forwarding watch ----------------------------------------------------------------------

    @_never_raises
    def watch_changed(self, run: Any) -> None:
        """A forwarding watch run (a callrouter.domain.watch_views.RunView) started, ended or was
        acknowledged: its id, state and outcome; the practice's number masked."""
        self._publish(topics.forwarding_watch(self.node, run.practice), {
            "v": 1, "at": self._at(), "type": "forwarding_watch", "practice": run.practice, "run_id": run.id,
            "number": mask_number(run.number), "state": run.state, "outcome": run.outcome,
            "rtt_ms": run.rtt_ms, "alarm": run.alarm}, qos=1)

    # --- payloads ----------------------------------------------------------------------------------

    def _publish(self, topic: str, payload: Mapping[str, Any] | None, retain: bool = False, qos: int = 0) -> None:
        for sink in self._sinks:
            try:
                sink.publish(topic, payload, retain=retain, qos=qos)
            except Exception:
                logger.exception("event on %s not given to %s", topic, type(sink).__name__)

    def _call(self, call_id: str, practice: str, state: str, **details: Any) -> None:
        payload = {"v": 1, "at": self._at(), "call_id": call_id, "practice": practice, "state": state}
        payload.update({k: v for k, v in details.items() if v is not None})
        self._publish(topics.call_state(self.node, call_id), payload, qos=1)

    def _secretary(self, secretary: str, state: str, **details: Any) -> None:
        if state not in SECRETARY_STATES:
            logger.error("secretary %s: unknown state %r not published", secretary, state)
            return
        payload = {"v": 1, "at": self._at(), "secretary": secretary, "state": state}
        payload.update({k: v for k, v in details.items() if v is not None})
        self._publish(topics.secretary_state(self.node, secretary), payload, retain=True, qos=1)
