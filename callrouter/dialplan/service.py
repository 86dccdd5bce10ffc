"""The dialplans as a service of the daemon: loaded at start, reloaded when a file changes (polled)
or on SIGHUP; each load's error count goes to the metrics and the practice cards to the events."""

from __future__ import annotations

import logging
from typing import Mapping, Protocol

from twisted.application.internet import TimerService

from callrouter.dialplan.registry import DialplanRegistry
from callrouter.domain.model import Dialplan
from callrouter.metrics import Metrics

logger = logging.getLogger(__name__)


class PracticesListener(Protocol):
    """Who publishes the practices loaded (the event notifier: their cards, retained)."""

    def practices_loaded(self, dialplans: Mapping[str, Dialplan]) -> None: ...


class DialplanService(TimerService):
    """Loads the dialplans, then reloads them when a file changes or on SIGHUP."""

    def __init__(self, registry: DialplanRegistry, poll_seconds: float, metrics: Metrics, events: PracticesListener):
        self.registry = registry
        self.metrics = metrics
        self.events = events
        super().__init__(poll_seconds, self._poll)
        self.setName("dialplans")

    def startService(self) -> None:
        self.reload()
        if not self.registry.dialplans:
            logger.error("no valid dialplan: every call will hear that the number is not served")
        super().startService()

    def follow(self, poll_seconds: float) -> None:
        """A settings reload: the files are polled every `poll_seconds` from the next poll on."""
        self.step = poll_seconds
        loop = getattr(self, "_loop", None)  # made at start
        if loop is not None:
            loop.interval = poll_seconds

    def _poll(self) -> None:
        if self.registry.changed_on_disk():
            self.reload()

    def reload(self) -> None:
        report = self.registry.reload()
        self.metrics.dialplan_reloaded(len(report.errors))
        self.events.practices_loaded(self.registry.dialplans)  # the practice cards, retained
