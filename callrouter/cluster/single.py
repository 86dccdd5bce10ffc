"""The one node of a SQLite database: it always holds its lease and always leads.

SQLite is one file on one machine, so there is nobody to share the work with nor to fence out:
these stand in for the lease rows, with the same interfaces, so the service tree is the same.
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet import defer

from callrouter.cluster.lease import RENEWED
from callrouter.cluster.ports import Acquired

EPOCH = TERM = 1


class SingleNode(Service):
    """Implements callrouter.cluster.leader.NodeView."""

    name = "node-lease"
    epoch = EPOCH

    def __init__(self, node: str) -> None:
        self.node = node

    def holds(self) -> bool:
        return True

    def when_held(self) -> "defer.Deferred[None]":
        return defer.succeed(None)


class SingleLeases:
    """Implements callrouter.cluster.ports.LeaseStore: every lease and every lead granted."""

    def acquire(self, node: str, lease_s: float, host: str, pid: int) -> Acquired:
        return Acquired(EPOCH, False)

    def renew(self, node: str, epoch: int, lease_s: float) -> str:
        return RENEWED

    def release(self, node: str, epoch: int) -> None:
        return None

    def take_lead(self, role: str, node: str, epoch: int, wait_s: float) -> int | None:
        return TERM

    def release_lead(self, role: str, node: str, epoch: int) -> None:
        return None

    def live_peers(self, node: str) -> tuple[str, ...]:
        return ()
