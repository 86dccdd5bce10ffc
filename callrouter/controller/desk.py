"""The secretary desk: who is logged in, paused, registered, ringing or on a call (in memory).

`Desk` implements callrouter.ports.SecretaryDesk for one node: the API and the console log
secretaries in and out and pause them, the edge's registration poll says whose softphone is on,
the call side tells it which phone rings, answers or misses an offer. Who covers which queue is the
`QueueBook` built here from the settings (`controller.secretaries`), which the call side's line
shares.

- After `max_missed_offers` offers in a row not taken she is paused ("3 appels manqués
  d'affilée"); turning her softphone off and on is how she says "I am back" from such a pause (a
  pause she chose stays until she resumes: a network blip re-registers too).
- Logins and pauses survive a restart: written atomically to `state_file` on each change, read
  back when the desk is built.
- Her state changes are published (MQTT) and counted (a gauge per state); her "calls today" are
  counted on the secretariat's local day.
- Whenever a secretary may take a call again, the listeners given to `when_available` run (the
  call side offers waiting calls then).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any, Callable, Mapping

from callrouter.controller.context import LOCAL_DAY_ZONE, NoEvents
from callrouter.controller.queues import QueueBook
from callrouter.controller.settings import ControllerSettings
from callrouter.domain.serving import SECRETARY_STATES, Secretary
from callrouter.events import card, topics
from callrouter.metrics import Metrics
from callrouter.ports import SecretaryStateError, UnknownSecretary, utc_from_clock

logger = logging.getLogger(__name__)


class Desk:
    def __init__(self, settings: ControllerSettings, reactor: Any, metrics: Metrics | None = None,
                 events: Any = None) -> None:
        self.settings = settings
        self.reactor = reactor
        self.metrics = metrics or Metrics()
        self.events = events if events is not None else NoEvents()
        self.queues = QueueBook(settings.secretaries, settings.secretary_domain, settings.levels, settings.login_required)
        self._listeners: list[Callable[[], None]] = []
        self._restore()

    # --- the team, as the API and the console see it ---------------------------------------------

    def secretary(self, who: str) -> Secretary:
        secretary = self.queues.find(who)
        if secretary is None:
            raise UnknownSecretary(who)
        return secretary

    def known(self, who: str) -> bool:
        return self.queues.find(who) is not None

    def views(self) -> list[dict[str, Any]]:
        return [self.secretary_view(a) for a in self.queues.secretaries()]

    def view(self, who: str) -> dict[str, Any]:
        return self.secretary_view(self.secretary(who))

    def current_offer(self, who: str) -> dict[str, Any] | None:
        return self.secretary(who).offer

    def secretary_view(self, secretary: Secretary) -> dict[str, Any]:
        today = utc_from_clock(self.reactor).astimezone(LOCAL_DAY_ZONE).date()
        return {"id": secretary.id, "username": secretary.username, "phone": secretary.uri, "state": secretary.state,
                "logged_in": secretary.logged_in, "registered": secretary.registered if secretary.username else None,
                "paused": secretary.paused, "missed_in_a_row": secretary.missed,
                "calls_today": secretary.calls_on(today, LOCAL_DAY_ZONE), "levels": dict(secretary.levels)}

    def login(self, who: str) -> dict[str, Any]:
        """She starts her shift: offered calls from now on while her softphone is registered."""
        secretary = self.secretary(who)
        if not secretary.logged_in:
            secretary.logged_in, secretary.missed = True, 0
            secretary.idle_since = self.reactor.seconds()
            logger.info("secretary %s logged in", secretary.id)
            self._save()
            self._changed(secretary)
            self._available()
        return self.secretary_view(secretary)

    def logout(self, who: str) -> dict[str, Any]:
        """End of her shift: no new offer (a call she is on goes on). A fixed phone cannot log out:
        pause it instead."""
        secretary = self.secretary(who)
        if secretary.username is None:
            raise SecretaryStateError(f"{secretary.id} is a fixed phone: pause it instead of logging it out")
        if secretary.logged_in:
            secretary.logged_in = False
            logger.info("secretary %s logged out", secretary.id)
            self._save()
            self._changed(secretary)
        return self.secretary_view(secretary)

    def pause(self, who: str, reason: str) -> dict[str, Any]:
        secretary = self.secretary(who)
        secretary.paused, secretary.auto_paused = reason or "pause", False
        logger.info("secretary %s paused", secretary.id)
        self._save()
        self._changed(secretary)
        return self.secretary_view(secretary)

    def resume(self, who: str) -> dict[str, Any]:
        """Back from a pause (hers, or the automatic one after missed offers): offered calls again."""
        secretary = self.secretary(who)
        secretary.paused, secretary.missed, secretary.auto_paused = None, 0, False
        self._save()
        self._changed(secretary)
        self._available()
        return self.secretary_view(secretary)

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
                self._changed(secretary)
        self.count()
        if came:
            self._save()
            self._available()

    # --- the call side --------------------------------------------------------------------------

    def when_available(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def ringing(self, secretary: Secretary, pop: Mapping[str, Any]) -> None:
        """Her screen-pop is built once (kept for her console, published on MQTT) before she rings."""
        secretary.activity = "ringing"
        secretary.offer = card.screen_pop(pop["dialplan"], at=utc_from_clock(self.reactor),
                                          secretary=topics.secretary_id(secretary.id),
                                          **{k: v for k, v in pop.items() if k != "dialplan"})
        self.events.offer_made(secretary.offer)
        self.count()

    def answered(self, secretary: Secretary, call_id: str) -> None:
        secretary.missed = 0
        secretary.activity = "on_call"
        secretary.count_answer(call_id, utc_from_clock(self.reactor))
        self.count()

    def missed(self, secretary: Secretary) -> None:
        secretary.missed += 1
        limit = self.settings.max_missed_offers
        if limit and secretary.missed >= limit and secretary.paused is None:
            secretary.paused = "1 appel manqué" if secretary.missed == 1 else f"{secretary.missed} appels manqués d'affilée"
            secretary.auto_paused = True
            logger.warning("secretary %s paused after %d missed offers", secretary.id, secretary.missed)
            self._save()
            self._changed(secretary)

    def free(self, secretary: Secretary | None, wrap_up: float) -> None:
        if secretary is None:
            return
        if wrap_up > 0:
            secretary.activity = "wrap_up"
            self._changed(secretary)
            self.reactor.callLater(wrap_up, self._ready, secretary)
        else:
            self._ready(secretary)

    def seed_answer(self, who: str, call_id: str, at: dt.datetime) -> None:
        secretary = self.queues.find(who)
        if secretary is not None:
            secretary.answers.setdefault(call_id, at)

    def count(self) -> None:
        """The gauge of secretaries per state."""
        counts = dict.fromkeys(SECRETARY_STATES, 0)
        for a in self.queues.secretaries():
            counts[a.state] = counts.get(a.state, 0) + 1
        for state, n in counts.items():
            self.metrics.secretaries.labels(state).set(n)

    # --- helpers ------------------------------------------------------------------------------------

    def _ready(self, secretary: Secretary) -> None:
        secretary.activity = "idle"
        secretary.offer = None
        secretary.idle_since = self.reactor.seconds()
        self._changed(secretary)
        self._available()

    def _available(self) -> None:
        for listener in self._listeners:
            listener()

    def _changed(self, secretary: Secretary) -> None:
        self.events.secretary_changed(secretary.id, secretary.state,
                                      reason=secretary.paused if secretary.state == "paused" else None)
        self.count()

    def _save(self) -> None:
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

    def _restore(self) -> None:
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
