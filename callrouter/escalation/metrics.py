"""Prometheus metrics of escalations: labels are practice, tier, channel and outcome, never a number.

`steps` counts every step the engine settles, by channel and outcome: `sent` (an SMS or e-mail
the gateway took), `failed` (the channel refused it), `skipped` (nobody to send it to), or what an
alert call saw (callrouter.domain.alert_call: acknowledged, connected, no_key_pressed, no_answer,
busy). Every series starts at 0: the fixed label sets here, those of each practice's tiers in
`seed()` (callrouter.observe.samplers calls it at start and after each reload, finding this object
by its registry with `of()`).
"""

from __future__ import annotations

import weakref
from typing import Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram

from callrouter.domain import alert_call
from callrouter.domain.escalation import CHANNEL_FIELD
from callrouter.domain.model import Dialplan

CHANNELS = tuple(CHANNEL_FIELD)  # sms, call, email
DUTY_CHANNELS = ("sms", "email")
SENT, FAILED, SKIPPED = "sent", "failed", "skipped"
CALL_OUTCOMES = (alert_call.ACKNOWLEDGED, alert_call.CONNECTED, alert_call.ANSWERED_NO_KEY,
                 alert_call.NO_ANSWER, alert_call.BUSY)
STEP_OUTCOMES = (SENT, FAILED, SKIPPED, *CALL_OUTCOMES)

_BY_REGISTRY: "weakref.WeakKeyDictionary[CollectorRegistry, EscalationMetrics]" = weakref.WeakKeyDictionary()


class EscalationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("practice", "tier")
        self.started = Counter("callrouter_escalations_started_total", "Escalation chains started",
                               labels, registry=registry)
        self.start_retries = Counter("callrouter_escalation_start_retries_total",
                                     "Escalation chains the database could not store at once, tried again",
                                     labels, registry=registry)
        self.acknowledged = Counter("callrouter_escalations_acknowledged_total",
                                    "Escalation chains acknowledged", labels, registry=registry)
        self.exhausted = Counter("callrouter_escalations_exhausted_total",
                                 "Escalation chains that ran out of steps unacknowledged", labels,
                                 registry=registry)
        self.step_failures = Counter("callrouter_escalation_step_failures_total",
                                     "Escalation steps a channel failed to send", labels + ("channel",),
                                     registry=registry)
        self.steps = Counter("callrouter_escalation_steps_total", "Escalation steps settled, by channel "
                             "and outcome", ("channel", "outcome"), registry=registry)
        self.duty_alert_failures = Counter("callrouter_escalation_duty_alert_failures_total",
                                           "Alerts to the duty contact of an exhausted chain that failed",
                                           ("channel",), registry=registry)
        self.ack_delay = Histogram("callrouter_escalation_ack_delay_seconds",
                                   "From the chain's start to its acknowledgement", labels,
                                   buckets=(30, 60, 120, 180, 300, 600, 900, 1800, 3600),
                                   registry=registry)
        for channel in CHANNELS:
            for outcome in STEP_OUTCOMES:
                self.steps.labels(channel, outcome)
        for channel in DUTY_CHANNELS:
            self.duty_alert_failures.labels(channel)
        _BY_REGISTRY[registry] = self

    @staticmethod
    def of(registry: CollectorRegistry) -> "EscalationMetrics | None":
        """The escalation metrics registered in `registry`, if any."""
        return _BY_REGISTRY.get(registry)

    # --- the engine's call sites ----------------------------------------------------------------

    def step_sent(self, channel: str, outcome: str | None) -> None:
        """A step the channel took; `outcome`: what an alert call saw (None for SMS and e-mail)."""
        self.steps.labels(channel, outcome if outcome in CALL_OUTCOMES else SENT).inc()

    def step_failed(self, practice: str, tier: str, channel: str) -> None:
        self.step_failures.labels(practice, tier, channel).inc()
        self.steps.labels(channel, FAILED).inc()

    def step_skipped(self, channel: str) -> None:
        self.steps.labels(channel, SKIPPED).inc()

    # --- start at 0 ------------------------------------------------------------------------------

    def seed(self, dialplans: Mapping[str, Dialplan]) -> None:
        for practice, dialplan in dialplans.items():
            for tier in dialplan.escalation:
                for metric in (self.started, self.acknowledged, self.exhausted, self.ack_delay):
                    metric.labels(practice, tier)
                for channel in CHANNELS:
                    self.step_failures.labels(practice, tier, channel)
