"""The team read from the database when the service starts (seeded once from the settings), and
applied to the desk before any call can arrive; then re-read now and then, so that a change made
through another node's API reaches this node's dispatch too.

When the team tables are empty (a new database, or one from before the team moved there), the
settings' `controller.secretaries`, `controller.levels` and `http.console.pause_reasons` are
imported once, audited as "system". From then on the database is the source: those settings
keys are only the first seed, and a line in the log says so at every start.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet import task

from callrouter.domain.team import Team
from callrouter.ports import Actor, RunBlocking, SecretaryDesk, utc_from_clock

logger = logging.getLogger(__name__)

SEEDER = Actor("system", "startup")
RELOAD_S = 30.0


class TeamSource(Protocol):
    """The team in the store (callrouter.store.team.TeamRepository)."""

    def load(self) -> Team | None: ...
    def seed(self, team: Team, actor: Actor, now: dt.datetime) -> Team | None: ...


class TeamService(Service):
    name = "team"

    def __init__(self, store: TeamSource, desk: SecretaryDesk, seed: Team, reactor: Any,
                 run_blocking: RunBlocking, reload_s: float = RELOAD_S) -> None:
        self._store, self._desk, self._seed = store, desk, seed
        self._reactor, self._run_blocking, self._reload_s = reactor, run_blocking, reload_s
        self._loop: task.LoopingCall | None = None

    def startService(self) -> None:
        """Blocking, as the store's start is: no call is taken before the team is known."""
        team = self._store.load()
        if team is None:
            team = self._store.seed(self._seed, SEEDER, utc_from_clock(self._reactor)) or self._store.load()
            logger.warning("team seeded from the settings (controller.secretaries, controller.levels, "
                           "http.console.pause_reasons): %d secretaries, %d pause reasons; from now on the team "
                           "lives in the database and those settings are not read again",
                           len(team.secretaries), len(team.pause_reasons))
        else:
            logger.info("team read from the database (version %d: %d secretaries, %d pause reasons); "
                        "controller.secretaries, controller.levels and http.console.pause_reasons in the "
                        "settings were only its first seed", team.version, len(team.secretaries),
                        len(team.pause_reasons))
        self._desk.apply_team(team)
        super().startService()
        if self._reload_s:
            self._loop = task.LoopingCall(self._reload)
            self._loop.clock = self._reactor
            self._loop.start(self._reload_s, now=False)

    def stopService(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return super().stopService()

    def _reload(self):
        d = self._run_blocking(self._store.load)
        d.addCallback(lambda team: team is not None and self._desk.apply_team(team))
        d.addErrback(lambda f: logger.warning("team not re-read: %s", f.getErrorMessage()))
        return d
