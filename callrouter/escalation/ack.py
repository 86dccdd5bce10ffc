"""Acknowledgement paths (link, SMS reply, API): record it in the store, then stop the chain.

Blocking (the web handlers run it in a thread pool); `notify` hands the accepted acknowledgement
to the engine on the reactor thread, e.g. `lambda v: reactor.callFromThread(engine.acknowledged, v)`.

An SMS reply is read, not merely received (callrouter.domain.sms_reply): only an explicit yes
acknowledges, a refusal is recorded as that practitioner's decline and the chain moves on at once
(`declined(escalation_id)`, on the reactor thread), anything else changes nothing and the sender
is told how to answer (`answer(number, text)`). Both inbound paths, the HTTP webhook and the SMPP
bind, call `by_sms`. Every reply is logged on the chain(s) it concerned, the number masked.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Callable

from callrouter.domain import sms_reply
from callrouter.domain.call import mask_number
from callrouter.domain.escalation import CANCELLED
from callrouter.domain.escalation_views import DECLINED, AckResult, UnknownEscalation
from callrouter.escalation import tokens
from callrouter.escalation.ports import AckStore

logger = logging.getLogger(__name__)

# A reply may still acknowledge (late) or decline a chain that ended this long ago.
REPLY_WINDOW = dt.timedelta(hours=24)
# What each decision is logged as on the chain.
ACTIONS = {sms_reply.Acknowledge: "acknowledged", sms_reply.Decline: DECLINED,
           sms_reply.AlreadyClosed: "already_closed", sms_reply.AskWhich: "asked_which",
           sms_reply.Explain: "explained"}


@dataclass(frozen=True)
class LinkAck:
    status: str  # "acknowledged" | "already" | "invalid"
    practice: str | None = None


@dataclass(frozen=True)
class ReplyResult:
    """What an SMS reply did. `action` is "ignored" for a number no chain reached."""

    understood: str                      # yes | no | unclear
    action: str                          # acknowledged | declined | already_closed | asked_which | explained | ignored
    escalation_ids: tuple[int, ...] = ()
    accepted: bool = False               # an acknowledgement the store accepted
    answer: str | None = None            # the French SMS sent back, if any


class Acknowledger:
    def __init__(self, repo: AckStore, secret: str,
                 notify: Callable[[object], None],
                 declined: Callable[[int], None] = lambda escalation_id: None,
                 answer: Callable[[str, str], None] = lambda number, text: None) -> None:
        self._repo = repo
        self._secret = secret
        self._notify = notify
        self._declined = declined
        self._answer = answer

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

    def by_sms(self, sender: str, text: str | None, now: dt.datetime, via: str = "webhook") -> ReplyResult:
        """A practitioner's reply, read (see the module docstring). `via`: webhook | smpp."""
        reading = sms_reply.read_reply(text)
        reached = self._repo.reached(sender, now - REPLY_WINDOW)
        practitioners = {view.id: who for view, who in reached}
        chains = [sms_reply.Candidate(view.id, view.acknowledged_at is None and view.outcome != CANCELLED)
                  for view, _ in reached]
        action = sms_reply.decide(reading, chains)
        masked = mask_number(sender)
        if isinstance(action, sms_reply.Ignore):
            logger.info("inbound SMS from %s matches no escalation: ignored", masked)
            return ReplyResult(reading.kind, "ignored")
        accepted = False
        if isinstance(action, sms_reply.Acknowledge):
            accepted = self._ack(action.escalation_id, practitioners.get(action.escalation_id), "sms", now).accepted
            if not accepted:  # someone else was first between our read and the write
                action = sms_reply.AlreadyClosed(action.escalation_id)
        ids = _concerned(action) or (chains[0].escalation_id,)
        name = ACTIONS[type(action)]
        ref = sms_reply.reference(reading.escalation_id) if reading.escalation_id is not None else None
        self._repo.record_reply(ids, now, masked, practitioners, via, reading.kind, ref, name)
        logger.info("SMS reply from %s (%s) on escalation %s: read %s, %s", masked,
                    practitioners.get(ids[0]) or "?", ",".join(map(str, ids)), reading.kind, name)
        if isinstance(action, sms_reply.Decline):
            logger.warning("escalation %s declined by %s by SMS: the chain moves on", action.escalation_id,
                           practitioners.get(action.escalation_id))
            self._declined(action.escalation_id)
        text_back = sms_reply.answer(action)
        if text_back:
            self._answer(sender, text_back)
        return ReplyResult(reading.kind, name, ids, accepted, text_back)

    def by_user(self, escalation_id: int, username: str, now: dt.datetime) -> AckResult:
        """A secretary or practitioner acknowledges in the console (who, in `acknowledged_by`)."""
        return self._ack(escalation_id, f"user:{username}", "api", now)


def _concerned(action: sms_reply.Action) -> tuple[int, ...]:
    if isinstance(action, (sms_reply.AskWhich, sms_reply.Explain)):
        return action.escalation_ids
    return (action.escalation_id,)  # type: ignore[union-attr]
