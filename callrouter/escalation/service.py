"""Builds the escalation engine and its web handlers from the settings: what app.py wires in.

What it needs from the other rooms comes in through ports, built by app.py before it: the chain
store (callrouter.store.escalations.EscalationRepository, a ChainStore) and, for voice calls, the
controller's alert calls (an AlertPlacer) and the prompt catalogue.

This is the one place the engine is told when to take chains: with a `lead` (callrouter.cluster)
the engine runs on its fenced store, asks the lead before each step, and its service in the tree
is the Leadership, which starts it on the node taking the lead and stops it when the lead is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from prometheus_client import CollectorRegistry
from twisted.internet import threads

from callrouter.domain.model import Dialplan
from callrouter.escalation.ack import Acknowledger
from callrouter.escalation.channels import build_channels
from callrouter.escalation.engine import EscalationEngine, EscalationEvents
from callrouter.escalation.metrics import EscalationMetrics
from callrouter.escalation.ports import AlertPlacer, ChainStore
from callrouter.escalation.settings import EscalationSettings
from callrouter.escalation.smpp import SmppInbound
from callrouter.escalation.voice import PRACTICE_NAME_PROMPT, PracticeNames, VoiceChannel
from callrouter.ports import RunBlocking


class Lead(Protocol):
    """The escalation lead of this node (callrouter.cluster.build.Lead, given by app.py)."""

    chains: ChainStore            # the engine's store, its writes fenced by the lead

    def holds(self) -> bool: ...

    def service(self, follower: Any) -> Any: ...


@dataclass(frozen=True)
class EscalationParts:
    engine: EscalationEngine      # a Service: add it to the tree after the store and the dialplans
    acknowledger: Acknowledger
    repo: ChainStore
    # Blocking, for the API's threads: start a chain on the reactor thread and return its id.
    start_from_thread: Callable[..., "int | None"]
    service: Any                  # what goes in the tree: the engine, or the Leadership starting it


def in_thread_pool(reactor: Any) -> RunBlocking:
    """Blocking calls on the reactor's thread pool (the store's transactions, smtplib, espeak-ng)."""
    def run_blocking(f, *args):
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), f, *args)

    return run_blocking


def build_voice(settings: EscalationSettings, repo: ChainStore, alerts: AlertPlacer, var_dir: Path,
                catalogue: Any, reactor: Any) -> VoiceChannel | None:
    """The voice channel on the controller's alert calls when `escalation.voice_calls` is on (else
    None: `call` steps go as SMS). A key pressed is recorded through `repo`."""
    if not (settings.enabled and settings.voice_calls):
        return None
    run_blocking = in_thread_pool(reactor)

    def existing(practice: str) -> Path | None:
        path = catalogue.wav_path(PRACTICE_NAME_PROMPT, practice)
        return path if path.exists() else None

    names = PracticeNames(Path(var_dir) / "prompts", existing, run_blocking)
    return VoiceChannel(reactor, run_blocking, alerts, repo, names)


def build_escalation(settings: EscalationSettings, repo: ChainStore, dialplan_for: Callable[[str], Dialplan | None],
                     reactor: Any, registry: CollectorRegistry, voice: VoiceChannel | None = None,
                     events: EscalationEvents | None = None, lead: Lead | None = None) -> EscalationParts:
    """The engine on `reactor` (clock, network and thread pool) and `repo`, and its acknowledger.
    `voice`: the alert-call channel for `call` steps (see build_voice).
    `events`: where an exhausted chain is published (the EventNotifier).
    `lead`: the escalation lead of this node (its chains run on `lead.chains`, fenced by it)."""
    run_blocking = in_thread_pool(reactor)
    # The acknowledgement paths stop the engine's chains, and the engine's SMPP bind feeds them: the
    # engine, built last, is reached through the reactor thread once the service runs.
    acknowledger = Acknowledger(repo, settings.ack_secret or "",
                                lambda view: reactor.callFromThread(engine.acknowledged, view),
                                declined=lambda eid: reactor.callFromThread(engine.declined, eid),
                                answer=lambda to, text: reactor.callFromThread(engine.answer_sms, to, text))
    # Receipts and replies on an SMPP bind take the webhooks' paths.
    inbound = SmppInbound(repo, acknowledger, reactor, run_blocking)
    channels = build_channels(settings, reactor, run_blocking, voice, inbound)
    engine = EscalationEngine(lead.chains if lead else repo, channels, dialplan_for, settings,
                              reactor, EscalationMetrics(registry), run_blocking, events, lead.holds if lead else None)

    def start_from_thread(call_id, dialplan, tier, caller, triggered_by, note):
        return threads.blockingCallFromThread(reactor, engine.start, call_id, dialplan, tier, caller,
                                              triggered_by, note)

    return EscalationParts(engine, acknowledger, repo, start_from_thread, lead.service(engine) if lead else engine)
