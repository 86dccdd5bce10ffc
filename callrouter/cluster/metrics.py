"""Prometheus metrics of the node leases: labels are a role or a bounded reason, never a name."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

LOSS_REASONS = ("not_renewed", "expired", "superseded")
ROLES = ("escalation",)


class ClusterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.held = Gauge("callrouter_node_lease_held", "1 while this node holds its lease", registry=registry)
        self.epoch = Gauge("callrouter_node_lease_epoch", "This node's lease epoch (0: none yet)",
                           registry=registry)
        self.lost = Counter("callrouter_node_lease_lost_total", "Leases this node lost, by reason",
                            ("reason",), registry=registry)
        self.leading = Gauge("callrouter_cluster_leading", "1 while this node leads the role",
                             ("role",), registry=registry)
        self.lead_changes = Counter("callrouter_cluster_lead_changes_total",
                                    "Times this node took or gave up the lead of a role", ("role", "change"),
                                    registry=registry)
        self.unshared_peers = Gauge("callrouter_cluster_unshared_peers",
                                    "Other nodes with a live lease on this database while this node's "
                                    "cluster.shared_desk is off (each offers calls from its own desk)",
                                    registry=registry)
        for reason in LOSS_REASONS:
            self.lost.labels(reason)
        for role in ROLES:
            self.leading.labels(role).set(0)
            for change in ("taken", "lost"):
                self.lead_changes.labels(role, change)
