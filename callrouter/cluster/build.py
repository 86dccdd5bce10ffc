"""The node's lease and the leads it may take, from the settings: what app.py wires in.

With a lease store (PostgreSQL, callrouter.store.leases) the node renews a row and leads a role
only while the database says so; without one (SQLite) it is the single node and always leads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from prometheus_client import CollectorRegistry
from twisted.application.service import IService

from callrouter.cluster.lease import LeaseTiming
from callrouter.cluster.leader import Follower, LeadFence, Leadership, NodeView
from callrouter.cluster.metrics import ClusterMetrics
from callrouter.cluster.node import NodeLease
from callrouter.cluster.peers import UnsharedPeers
from callrouter.cluster.ports import LeaseStore
from callrouter.cluster.settings import ClusterSettings
from callrouter.cluster.single import SingleLeases, SingleNode
from callrouter.controller.shared_desk import SharedDesk
from callrouter.ports import RunBlocking
from callrouter.store.desk import DeskStore
from callrouter.store.desk_listen import DeskListener

logger = logging.getLogger(__name__)

ESCALATION = "escalation"


@dataclass(frozen=True)
class Lead:
    """One role's lead on this node: `fence` is what the store checks, `chains` the follower's
    store fenced by it; `service(follower)` the Leadership that starts and stops the follower."""

    fence: LeadFence
    chains: Any
    service: Callable[[Follower], Leadership]

    def holds(self) -> bool:
        return self.fence.current() is not None


@dataclass(frozen=True)
class Cluster:
    node: NodeView          # a Service too: start it right after the store, before any lead
    single: bool            # SQLite: this node is the only one
    store: LeaseStore
    timing: LeaseTiming
    clock: Any
    run: RunBlocking
    metrics: ClusterMetrics

    def lead(self, role: str, chains: Callable[[LeadFence], Any]) -> Lead:
        fence = LeadFence(role, self.node)

        def service(follower: Follower) -> Leadership:
            return Leadership(fence, self.node, self.store, follower, self.timing, self.clock, self.run, self.metrics)

        return Lead(fence, chains(fence), service)

    @property
    def service(self) -> IService:
        return self.node  # type: ignore[return-value]


def build_cluster(settings: ClusterSettings, node: str, store: LeaseStore | None, clock: Any,
                  run_blocking: RunBlocking, registry: CollectorRegistry) -> Cluster:
    """`store`: the lease rows (PostgreSQL), or None for the single node of a SQLite database."""
    timing = LeaseTiming(settings.lease_seconds, settings.renew_seconds)
    metrics = ClusterMetrics(registry)
    if store is None:
        single = SingleNode(node)
        metrics.held.set(1)
        metrics.epoch.set(single.epoch)
        return Cluster(single, True, SingleLeases(), timing, clock, run_blocking, metrics)
    # Without the shared desk, any other node on this database is a misconfiguration: said loudly.
    peers = None if settings.shared_desk else UnsharedPeers(store, node, run_blocking, metrics.unshared_peers.set)
    lease = NodeLease(store, node, timing, clock, run_blocking, metrics, peers)
    return Cluster(lease, False, store, timing, clock, run_blocking, metrics)


def build_shared_desk(settings: ClusterSettings, cluster: Cluster, db: Any, desk: Any, line: Any, reactor: Any,
                      run_blocking: RunBlocking) -> SharedDesk | None:
    """The desk shared by the nodes (`cluster.shared_desk`, PostgreSQL only), or None: each node
    keeps its own, as a single node does. Start it after the team is on the desk, before calls."""
    if not settings.shared_desk:
        return None
    if cluster.single:
        logger.warning("cluster.shared_desk ignored: it is for several nodes on PostgreSQL, and this database is SQLite")
        return None

    def listen(on_notify):
        listener = DeskListener(db, on_notify)
        listener.start()
        return listener

    logger.info("shared desk: node %s serves the team with every node sharing this database", cluster.node.node)
    return SharedDesk(DeskStore(db, cluster.node.node), cluster.node, desk, line, reactor, run_blocking, listen)
