"""Escalation metrics live in the daemon's registry beside the others, labelled by practice and tier."""

from callrouter.escalation.metrics import EscalationMetrics
from callrouter.metrics import Metrics


def test_escalation_metrics_share_the_daemon_registry_without_clashing():
    metrics = Metrics()
    esc = EscalationMetrics(metrics.registry)
    esc.started.labels("cab", "urgent").inc()
    assert metrics.registry.get_sample_value("callrouter_escalations_started_total",
                                             {"practice": "cab", "tier": "urgent"}) == 1
    for metric in (esc.started, esc.acknowledged, esc.exhausted, esc.ack_delay):
        assert set(metric._labelnames) == {"practice", "tier"}
