"""The secretary desk: who is logged in, paused, registered, ringing or on a call (in memory).

`Desk` implements callrouter.ports.SecretaryDesk for one node: the API and the console log
secretaries in and out and pause them, the edge's registration poll says whose softphone is on,
the call side tells it which phone rings, answers or misses an offer. Who covers which queue is the
`QueueBook` built here, which the call side's line shares.

- The team (coverage, skill levels, pause reasons) is the settings' when the desk is built, then
  the database's, swapped live by `apply_team` (every Secretary kept as she is; waiting calls are
  offered again at once under the new coverage). A team older than the one applied is ignored.
- Once a team is applied, a pause must give one of its reasons (none given: the first); the
  automatic pause after missed offers is the system's own.
- After `max_missed_offers` offers in a row not taken she is paused ("3 appels manqués
  d'affilée"); turning her softphone off and on is how she says "I am back" from such a pause (a
  pause she chose stays until she resumes: a network blip re-registers too).
- Logins and pauses survive a restart: written atomically to `state_file` on each change, read
  back when the desk is built (callrouter.controller.saved_states).
- Her state changes are published (MQTT, with who made them), counted (a gauge per state) and
  handed to `history` (login, logout, pause with its reason, resume, softphone registered or not),
  with who made them: a user's name, or "system:<cause>". Her "calls today" are counted on the
  secretariat's local day.
- Whenever a secretary may take a call again, the listeners given to `when_available` run (the
  call side offers waiting calls then).
- With several nodes sharing the desk (`shared`, callrouter.controller.shared_desk), her login and
  pause are also the database's (another node's change is `adopt`ed here), and each offer, answer
  and end of her wrap-up is told to the shared desk, which keeps her one active offer in the
  database.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable, Mapping

from callrouter.controller import saved_states
from callrouter.controller.context import LOCAL_DAY_ZONE, NoEvents
from callrouter.controller.queues import QueueBook
from callrouter.controller.settings import ControllerSettings
from callrouter.domain.serving import SECRETARY_STATES, Secretary
from callrouter.domain.team import BY_MISSED_OFFERS, BY_REGISTRATION, StateChange, Team
from callrouter.events import card, topics
from callrouter.metrics import Metrics
from callrouter.ports import SecretaryStateError, UnknownPauseReason, UnknownSecretary, utc_from_clock

logger = logging.getLogger(__name__)

DEFAULT_PAUSE_REASON = "pause"  # while no team gives the list


class Desk:
    def __init__(self, settings: ControllerSettings, reactor: Any, metrics: Metrics | None = None,
                 events: Any = None, history: Callable[[StateChange], None] | None = None) -> None:
        self.settings = settings
        self.reactor = reactor
        self.metrics = metrics or Metrics()
        self.events = events if events is not None else NoEvents()
        self.queues = QueueBook(settings.secretaries, settings.secretary_domain, settings.levels, settings.login_required)
        self.team_version = 0  # of the team applied last (0: the settings')
        self._pause_reasons: tuple[str, ...] = ()  # empty: any reason
        self._registered: frozenset[str] = frozenset()  # the usernames the edge's last poll had
        self._history = history or (lambda change: None)
        self._listeners: list[Callable[[], None]] = []
        self._since: dict[str, tuple[tuple, dt.datetime]] = {}  # id -> ((state, pause reason), since when)
        self.shared: Any = None  # the shared desk's hooks (several nodes), or None
        self._saved = saved_states.read(settings.state_file)
        for secretary in self.queues.secretaries():
            saved_states.restore(secretary, self._saved)

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
        state = secretary.state
        if self.shared is not None and state == "available" and secretary.id in self.shared.elsewhere:
            state = "on_call" if self.shared.elsewhere[secretary.id] else "ringing"  # another node's call
        return {"id": secretary.id, "username": secretary.username, "phone": secretary.uri, "state": state,
                "logged_in": secretary.logged_in, "registered": secretary.registered if secretary.username else None,
                "paused": secretary.paused, "missed_in_a_row": secretary.missed,
                "calls_today": secretary.calls_on(today, LOCAL_DAY_ZONE), "levels": dict(secretary.levels),
                "since": self._since_of(secretary).isoformat()}

    def apply_team(self, team: Team) -> bool:
        """Dispatch follows `team` from now on: coverage and levels swapped, secretaries added or
        removed (one removed while on a call keeps it), its pause reasons required; waiting calls
        are offered again. False, changing nothing, for a team not newer than the one applied. A
        bad entry raises ValueError before anything changes."""
        if team.version and team.version <= self.team_version:
            return False
        added, removed = self.queues.reconfigure(team.coverage, team.levels, team.secretaries)
        self.team_version, self._pause_reasons = team.version, tuple(team.pause_reasons)
        for secretary in added:
            saved_states.restore(secretary, self._saved)
        for secretary in self.queues.set_registered(self._registered):  # added: her softphone may be on already
            self._note(secretary, "registered", None, BY_REGISTRATION)
        logger.info("team version %d applied: %d secretaries (%d added, %d removed)", team.version,
                    len(self.queues.secretaries()), len(added), len(removed))
        self._save()
        for secretary in added + removed:
            self._changed(secretary)
        self.events.team_changed(team.version)
        self._available()
        return True

    def login(self, who: str, by: str | None = None) -> dict[str, Any]:
        """She starts her shift: offered calls from now on while her softphone is registered."""
        secretary = self.secretary(who)
        if not secretary.logged_in:
            secretary.logged_in, secretary.missed = True, 0
            secretary.idle_since = self.reactor.seconds()
            logger.info("secretary %s logged in", secretary.id)
            self._save()
            self._note(secretary, "logged_in", None, by)
            self._changed(secretary, by)
            self._available()
        return self.secretary_view(secretary)

    def logout(self, who: str, by: str | None = None) -> dict[str, Any]:
        """End of her shift: no new offer (a call she is on goes on). A fixed phone cannot log out:
        pause it instead."""
        secretary = self.secretary(who)
        if secretary.username is None:
            raise SecretaryStateError(f"{secretary.id} is a fixed phone: pause it instead of logging it out")
        if secretary.logged_in:
            secretary.logged_in = False
            logger.info("secretary %s logged out", secretary.id)
            self._save()
            self._note(secretary, "logged_out", None, by)
            self._changed(secretary, by)
        return self.secretary_view(secretary)

    def pause(self, who: str, reason: str | None = None, by: str | None = None) -> dict[str, Any]:
        """Paused with `reason` (spaces collapsed; none: the first of the team's reasons); once a
        team is applied, a reason not in its list raises UnknownPauseReason."""
        secretary = self.secretary(who)
        reason = " ".join((reason or "").split()) or (self._pause_reasons or (DEFAULT_PAUSE_REASON,))[0]
        if self._pause_reasons and reason not in self._pause_reasons:
            raise UnknownPauseReason(reason, self._pause_reasons)
        changed = (secretary.paused, secretary.auto_paused) != (reason, False)
        secretary.paused, secretary.auto_paused = reason, False
        logger.info("secretary %s paused", secretary.id)
        self._save()
        if changed:
            self._note(secretary, "paused", reason, by)
        self._changed(secretary, by)
        return self.secretary_view(secretary)

    def resume(self, who: str, by: str | None = None) -> dict[str, Any]:
        """Back from a pause (hers, or the automatic one after missed offers): offered calls again."""
        secretary = self.secretary(who)
        was_paused = secretary.paused is not None
        secretary.paused, secretary.missed, secretary.auto_paused = None, 0, False
        self._save()
        if was_paused:
            self._note(secretary, "resumed", None, by)
        self._changed(secretary, by)
        self._available()
        return self.secretary_view(secretary)

    def registrations_changed(self, usernames: frozenset[str]) -> None:
        """The usernames registered at the edge now (polled): only they are offered calls."""
        self.metrics.secretaries_registered.set(len(usernames))
        self._registered = usernames
        before = {a.uri: a.registered for a in self.queues.secretaries() if a.username}
        came = self.queues.set_registered(usernames)
        for secretary in came:
            self._note(secretary, "registered", None, BY_REGISTRATION)
            # After missed offers, turning her softphone off and on is how she says "I am back"; a
            # pause she chose stays until she resumes (a network blip re-registers too).
            if secretary.paused is not None and secretary.auto_paused:
                secretary.paused, secretary.missed, secretary.auto_paused = None, 0, False
                self._note(secretary, "resumed", None, BY_REGISTRATION)
        for secretary in self.queues.secretaries():
            if secretary.username and before.get(secretary.uri) and not secretary.registered:
                self._note(secretary, "unregistered", None, BY_REGISTRATION)
                self.events.secretary_changed(secretary.username, "offline", reason="softphone not registered",
                                              by=BY_REGISTRATION)
            elif secretary in came and not secretary.busy:
                self._changed(secretary, BY_REGISTRATION)
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
        if self.shared is not None:
            self.shared.ringing(secretary, pop["call_id"])
        self.events.offer_made(secretary.offer)
        self.count()

    def answered(self, secretary: Secretary, call_id: str) -> None:
        secretary.missed = 0
        secretary.activity = "on_call"
        secretary.count_answer(call_id, utc_from_clock(self.reactor))
        if self.shared is not None:
            self.shared.answered(secretary)
        self.count()

    def took_over(self, secretary: Secretary) -> None:
        """She took over a call a colleague had answered: on a call, not one more answered today."""
        secretary.missed = 0
        secretary.activity = "on_call"
        if self.shared is not None:
            self.shared.ringing(secretary, None)
        self._changed(secretary)

    def missed(self, secretary: Secretary) -> None:
        secretary.missed += 1
        limit = self.settings.max_missed_offers
        if limit and secretary.missed >= limit and secretary.paused is None:
            secretary.paused = "1 appel manqué" if secretary.missed == 1 else f"{secretary.missed} appels manqués d'affilée"
            secretary.auto_paused = True
            logger.warning("secretary %s paused after %d missed offers", secretary.id, secretary.missed)
            self._save()
            self._note(secretary, "paused", secretary.paused, BY_MISSED_OFFERS)
            self._changed(secretary, BY_MISSED_OFFERS)

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
        """The gauge of secretaries per state (and since when each is in hers)."""
        counts = dict.fromkeys(SECRETARY_STATES, 0)
        for a in self.queues.secretaries():
            counts[a.state] = counts.get(a.state, 0) + 1
            self._since_of(a)
        for state, n in counts.items():
            self.metrics.secretaries.labels(state).set(n)

    # --- helpers ------------------------------------------------------------------------------------

    def adopt(self, secretary: Secretary, logged_in: bool, paused: str | None, auto_paused: bool) -> None:
        """Her login and pause as another node changed them (the shared desk): published here too;
        the history row is the other node's."""
        if secretary.username is not None:
            secretary.logged_in = logged_in
        came_back = secretary.paused is not None and paused is None
        secretary.paused, secretary.auto_paused = paused, auto_paused and paused is not None
        if came_back:
            secretary.missed = 0
        saved_states.write(self.settings.state_file, self.queues.secretaries())
        self._changed(secretary, "system:shared_desk")
        self._available()

    def _ready(self, secretary: Secretary) -> None:
        secretary.activity = "idle"
        secretary.offer = None
        secretary.idle_since = self.reactor.seconds()
        if self.shared is not None:
            self.shared.ended(secretary)
        self._changed(secretary)
        self._available()

    def _since_of(self, secretary: Secretary) -> dt.datetime:
        """When she entered her state (a new pause reason is a new state); every change of state
        is followed by count(), which notes it."""
        key = (secretary.state, secretary.paused)
        known = self._since.get(secretary.id)
        if known is None or known[0] != key:
            known = self._since[secretary.id] = (key, utc_from_clock(self.reactor))
        return known[1]

    def _available(self) -> None:
        for listener in self._listeners:
            listener()

    def _changed(self, secretary: Secretary, by: str | None = None) -> None:
        """Her state published; one no longer in the team shows offline once her call is over."""
        if self.queues.find(secretary.id) is not secretary and not secretary.busy:
            self.events.secretary_changed(secretary.id, "offline", reason="removed from the team", by=by)
        else:
            self.events.secretary_changed(secretary.id, secretary.state, by=by,
                                          reason=secretary.paused if secretary.state == "paused" else None)
        self.count()

    def _note(self, secretary: Secretary, state: str, reason: str | None, by: str | None) -> None:
        """A row of her state history: who made the change (herself when not said)."""
        self._history(StateChange(utc_from_clock(self.reactor), secretary.id, state, reason, by or secretary.id))

    def _save(self) -> None:
        """Logins and pauses survive a restart (written atomically; and in the database when shared)."""
        saved_states.write(self.settings.state_file, self.queues.secretaries())
        if self.shared is not None:
            self.shared.states_changed()
