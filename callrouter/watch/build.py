"""Builds the forwarding watch from the settings: what app.py wires in.

What it needs from the other rooms comes in built already: the store (a WatchStore), the media
plane (MediaControl) and the leg router its calls register with, the metrics. The alerts go out
through the escalation's own senders, configured by the `escalation:` settings (the HTTP SMS
gateway, SMTP, or the development outbox file); an SMPP bind belongs to the escalation engine
and is not shared, so with `sms_gateway: smpp` the watch alerts by e-mail only.

Several nodes (PostgreSQL): the cluster's `watch` lead (callrouter.cluster) decides which node
plans and places the calls; its Leadership service is part of the parts when the watch is enabled
here. Every node's edge may get a call back: one that no attempt of this node waits for is written
in the store, on the attempt of the node that placed it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from twisted.application.service import IService
from twisted.internet import defer

from callrouter.cluster.build import Lead

from callrouter.controller.legs import LegRouter
from callrouter.domain import watch
from callrouter.domain.model import Dialplan
from callrouter.escalation.channels import HttpSmsChannel, OutboxFileChannel, SmtpChannel
from callrouter.escalation.ports import Channel
from callrouter.escalation.settings import EscalationSettings
from callrouter.metrics import Metrics
from callrouter.ports import MediaControl, RunBlocking, utc_from_clock
from callrouter.watch.alerts import WatchAlerts
from callrouter.watch.calls import CallSettings, WatchCalls
from callrouter.watch.ports import WatchStore
from callrouter.watch.service import WatchService
from callrouter.watch.settings import WatchSettings

logger = logging.getLogger(__name__)
WATCH_LEAD = "watch"  # the role's name in the cluster's leads


@dataclass(frozen=True)
class WatchParts:
    calls: WatchCalls      # its `returning` is the call controller's hook
    service: WatchService  # a Service: add it to the tree after the media plane
    lead: IService | None = None  # takes and keeps the watch's lead: before `service`, after the node lease
    senders: tuple[Channel, ...] = ()  # its alerts' SMS and e-mail senders (they follow a settings reload)


class NoFollower:
    """The watch lead's follower (callrouter.cluster.leader.Follower): nothing to start or stop, the
    service asks the lead before each call it places."""

    def __init__(self) -> None:
        self.ready: defer.Deferred = defer.succeed(None)

    def startService(self) -> None:
        self.ready = defer.succeed(None)

    def stopService(self) -> None:
        return None

    def reconcile(self) -> None:
        return None


def alert_channels(esc: EscalationSettings, reactor: Any, run_blocking: RunBlocking) -> dict[str, Channel]:
    """channel name -> the escalation's sender for it, as the settings configure them."""
    if esc.outbox_file is not None:
        outbox = OutboxFileChannel(esc.outbox_file, reactor)
        return {"sms": outbox, "email": outbox}
    out: dict[str, Channel] = {}
    if esc.sms_url and esc.sms_gateway == "http":
        out["sms"] = HttpSmsChannel(esc, reactor)
    if esc.smtp_host:
        out["email"] = SmtpChannel(esc, run_blocking)
    return out


def secretariat_contacts(settings: WatchSettings, esc: EscalationSettings) -> tuple[tuple[str, str], ...]:
    """The secretariat's contacts a failure alerts: the watch's own, else the escalation's duty contact."""
    if settings.contact_email or settings.contact_sms:
        return tuple([("email", e) for e in settings.contact_email] + [("sms", n) for n in settings.contact_sms])
    duty = esc.duty_contact
    return tuple(c for c in (("email", duty.email), ("sms", duty.sms)) if c[1])


def build_watch(settings: WatchSettings, esc: EscalationSettings, outbound_trunk: str, store: WatchStore,
                media: MediaControl, legs: LegRouter, dialplans: Callable[[], Mapping[str, Dialplan]], reactor: Any,
                run_blocking: RunBlocking, metrics: Metrics,
                when_ready: Callable[[], defer.Deferred] | None = None, lead: Lead | None = None,
                shared: bool = False) -> WatchParts:
    """`lead`: the cluster's `watch` lead (None: this node always leads); `shared`: several nodes
    share the database, so a call back may reach another node's edge."""
    callers = watch.range_numbers(settings.caller_number, settings.caller_range) if settings.caller_number else ()

    def elsewhere(caller: str, number: str, name: str) -> None:
        run_blocking(store.record_return, caller, number, name, utc_from_clock(reactor)).addErrback(
            lambda f: logger.error("a watch call back not written for the node that placed it: %s",
                                   f.getErrorMessage()))

    calls = WatchCalls(reactor, media, CallSettings(outbound_trunk, callers, settings.display_name,
                                                    settings.release_code), legs, elsewhere)

    def practice(name: str) -> tuple[str, str]:
        dialplan = dialplans().get(name)
        return (dialplan.name, dialplan.calendar.timezone) if dialplan else (name, "Europe/Paris")

    senders = alert_channels(esc, reactor, run_blocking)
    alerts = WatchAlerts(store, senders, run_blocking, reactor, practice)
    service = WatchService(settings, dialplans, store, calls, alerts, reactor, run_blocking, metrics,
                           secretariat_contacts(settings, esc), when_ready,
                           leads=lead.holds if lead is not None else None, shared=shared)
    leadership = lead.service(NoFollower()) if lead is not None and settings.enabled else None
    return WatchParts(calls, service, leadership, tuple(senders.values()))
