"""A node without the shared desk that sees other nodes on its database: said loudly.

`cluster.shared_desk` is off by default, so that a single node on PostgreSQL keeps offering calls
through a database outage. Two nodes on one database with it off each keep their own desk: a
secretary registered at both could be offered two calls at once. After each renewal of its lease,
such a node reads the other nodes' live leases; any it finds is logged as an error (once, when it
appears, naming what to set), and counted in `callrouter_cluster_unshared_peers` (alert
CallrouterUnsharedDesk). A peer that goes away is logged too, once.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Protocol

from twisted.internet import defer

from callrouter.ports import RunBlocking

logger = logging.getLogger(__name__)


class PeerSource(Protocol):
    def live_peers(self, node: str) -> tuple[str, ...]:
        """The other nodes holding a live lease on this database (blocking)."""
        ...


class UnsharedPeers:
    def __init__(self, store: PeerSource, node: str, run_blocking: RunBlocking,
                 gauge: Callable[[float], Any]) -> None:
        self._store, self._node, self._run, self._gauge = store, node, run_blocking, gauge
        self.seen: frozenset[str] = frozenset()

    @defer.inlineCallbacks
    def check(self):
        """Read the peers once; never fails (an unreadable table is the lease's own concern)."""
        try:
            peers = frozenset((yield self._run(self._store.live_peers, self._node)))
        except Exception as exc:
            logger.debug("node %s: other nodes' leases not read: %s", self._node, exc)
            return
        self.observe(peers)

    def observe(self, peers: frozenset[str]) -> None:
        new, gone = peers - self.seen, self.seen - peers
        if new:
            logger.error("node %s: node(s) %s also run on this database, and cluster.shared_desk is off here: "
                         "each node offers calls from its own desk, so a secretary may be offered two calls "
                         "at once. Set cluster.shared_desk: true on every node sharing the database "
                         "(docs/operations.md, \"Several nodes\"), or give each node its own database",
                         self._node, ", ".join(sorted(new)))
        if gone:
            logger.warning("node %s: node(s) %s no longer hold a lease on this database%s", self._node,
                           ", ".join(sorted(gone)), "" if peers else ": no other node left")
        self.seen = peers
        self._gauge(float(len(peers)))
