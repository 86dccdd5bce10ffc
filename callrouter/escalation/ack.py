"""Acknowledgement paths (link, SMS reply, API): record it in the store, then stop the chain.

Blocking (the web handlers run it in a thread pool); `notify` hands the accepted acknowledgement
to the engine on the reactor thread, e.g. `lambda v: reactor.callFromThread(engine.acknowledged, v)`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Callable

from callrouter.domain.call import mask_number
from callrouter.escalation import tokens
from callrouter.store.escalations import AckResult, EscalationRepository, UnknownEscalation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkAck:
    status: str  # "acknowledged" | "already" | "invalid"
    practice: str | None = None


class Acknowledger:
    def __init__(self, repo: EscalationRepository, secret: str,
                 notify: Callable[[object], None]) -> None:
        self._repo = repo
        self._secret = secret
        self._notify = notify

    def _ack(self, escalation_id: int, by: str | None, via: str, now: dt.datetime) -> AckResult:
        result = self._repo.acknowledge(escalation_id, by, via, now)
        if result.accepted:
            self._notify(result.escalation)
        return result

    def by_link(self, token: str, now: dt.datetime) -> LinkAck:
        found = tokens.verify(self._secret, token) if self._secret else None
        if found is None:
            logger.warning("acknowledgement link with a bad signature refused")
            return LinkAck("invalid")
        try:
            view = self._repo.get(found.escalation_id)
        except UnknownEscalation:
            return LinkAck("invalid")
        step = next((s for s in view.steps if (s.round, s.step) == (found.round, found.step)), None)
        result = self._ack(found.escalation_id, step.practitioner if step else None, "link", now)
        return LinkAck("acknowledged" if result.accepted else "already", view.practice)

    def by_sms(self, sender: str, now: dt.datetime) -> AckResult | None:
        """A reply from a number the chain contacted acknowledges it; other senders are ignored."""
        found = self._repo.find_by_destination(sender)
        if found is None:
            logger.info("inbound SMS from %s matches no escalation: ignored", mask_number(sender))
            return None
        view, step = found
        return self._ack(view.id, step.practitioner, "sms", now)

    def by_user(self, escalation_id: int, username: str, now: dt.datetime) -> AckResult:
        """A secretary or practitioner acknowledges in the console (who, in `acknowledged_by`)."""
        return self._ack(escalation_id, f"user:{username}", "api", now)
