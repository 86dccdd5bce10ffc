"""Prometheus metrics of escalations: labels are practice and tier only, never a number."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class EscalationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("practice", "tier")
        self.started = Counter("callrouter_escalations_started_total", "Escalation chains started",
                               labels, registry=registry)
        self.acknowledged = Counter("callrouter_escalations_acknowledged_total",
                                    "Escalation chains acknowledged", labels, registry=registry)
        self.exhausted = Counter("callrouter_escalations_exhausted_total",
                                 "Escalation chains that ran out of steps unacknowledged", labels,
                                 registry=registry)
        self.step_failures = Counter("callrouter_escalation_step_failures_total",
                                     "Escalation steps a channel failed to send", labels + ("channel",),
                                     registry=registry)
        self.duty_alert_failures = Counter("callrouter_escalation_duty_alert_failures_total",
                                           "Alerts to the duty contact of an exhausted chain that failed",
                                           ("channel",), registry=registry)
        self.ack_delay = Histogram("callrouter_escalation_ack_delay_seconds",
                                   "From the chain's start to its acknowledgement", labels,
                                   buckets=(30, 60, 120, 180, 300, 600, 900, 1800, 3600),
                                   registry=registry)
