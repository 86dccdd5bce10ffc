"""Builds the escalation engine and its web handlers from the settings: what app.py wires in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from prometheus_client import CollectorRegistry
from twisted.internet import threads

from callrouter.domain.model import Dialplan
from callrouter.escalation.ack import Acknowledger
from callrouter.escalation.channels import build_channels
from callrouter.escalation.engine import EscalationEngine, EscalationEvents
from callrouter.escalation.metrics import EscalationMetrics
from callrouter.escalation.settings import EscalationSettings
from callrouter.escalation.smpp import SmppChannel, connect_inbound
from callrouter.escalation.voice import VoiceChannel
from callrouter.store.db import Database
from callrouter.store.escalations import EscalationRepository


@dataclass(frozen=True)
class EscalationParts:
    engine: EscalationEngine      # a Service: add it to the tree after the store and the dialplans
    acknowledger: Acknowledger
    repo: EscalationRepository
    # Blocking, for the API's threads: start a chain on the reactor thread and return its id.
    start_from_thread: Callable[..., "int | None"]


def build_escalation(settings: EscalationSettings, db: Database, dialplan_for: Callable[[str], Dialplan | None],
                     reactor: Any, registry: CollectorRegistry, node: str = "local",
                     voice: VoiceChannel | None = None, events: EscalationEvents | None = None) -> EscalationParts:
    """The engine on `reactor` (clock, network and thread pool), its acknowledger and repository.
    `voice`: the alert-call channel for `call` steps (its acknowledgements go through `repo`).
    `events`: where an exhausted chain is published (the EventNotifier)."""
    def run_blocking(f, *args):
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), f, *args)

    repo = EscalationRepository(db, node)
    channels = build_channels(settings, reactor, run_blocking, voice)
    engine = EscalationEngine(repo, channels, dialplan_for, settings,
                              reactor, EscalationMetrics(registry), run_blocking, events)
    if voice is not None:
        voice.bind(repo, engine.acknowledged)  # on the reactor thread already
    acknowledger = Acknowledger(repo, settings.ack_secret or "",
                                lambda view: reactor.callFromThread(engine.acknowledged, view),
                                declined=lambda eid: reactor.callFromThread(engine.declined, eid),
                                answer=lambda to, text: reactor.callFromThread(engine.answer_sms, to, text))
    sms = channels.get("sms")
    if isinstance(sms, SmppChannel):  # receipts and replies arrive on the bind, not on the webhooks
        connect_inbound(sms, repo, acknowledger, engine.now, run_blocking)

    def start_from_thread(call_id, dialplan, tier, caller, triggered_by, note):
        return threads.blockingCallFromThread(reactor, engine.start, call_id, dialplan, tier, caller,
                                              triggered_by, note)

    return EscalationParts(engine, acknowledger, repo, start_from_thread)
