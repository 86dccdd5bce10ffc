"""What the node leases need from the store, and the fencing token the store checks.

The store implements `LeaseStore` (callrouter.store.leases: rows on PostgreSQL, on the database's
clock); callrouter.cluster.single has the trivial one a SQLite node uses. Every method blocks and
is one transaction: the services run them in the reactor's thread pool.

A `Fence` is what a node's writes carry when they need the lead: the store checks it in the same
transaction as the writes, and refuses them (raising `Fenced`) when the database says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Fenced(Exception):
    """A write refused: this node does not hold the lease or the lead it needs (any more)."""


@dataclass(frozen=True)
class Fence:
    role: str     # what is led ("escalation")
    node: str
    epoch: int    # the node's lease epoch: a newer process of the same node has a higher one
    term: int     # the lead's term: each change of leading node adds one


@dataclass(frozen=True)
class Acquired:
    epoch: int
    displaced: bool   # the previous epoch's lease had not expired (a restart, or a process fenced out)


class FenceSource(Protocol):
    """Read from the store's threads: the token to check now, or None (refuse without asking)."""

    def current(self) -> Fence | None: ...

    def refused(self, fence: Fence, reason: str) -> None:
        """The database refused `fence`: forget it at once (called from a store thread)."""
        ...


class LeaseStore(Protocol):
    def acquire(self, node: str, lease_s: float, host: str, pid: int) -> Acquired:
        """A lease for `node` under a new epoch, whatever the previous one's state."""
        ...

    def renew(self, node: str, epoch: int, lease_s: float) -> str:
        """`renewed`, `expired` (never renewed once expired) or `superseded` (a newer epoch)."""
        ...

    def release(self, node: str, epoch: int) -> None: ...

    def take_lead(self, role: str, node: str, epoch: int, wait_s: float) -> int | None:
        """The lead's term if this node (this epoch) leads `role` now, taking it when nobody
        holds it or its holder's lease is gone; None while another node holds it."""
        ...

    def release_lead(self, role: str, node: str, epoch: int) -> None: ...

    def live_peers(self, node: str) -> tuple[str, ...]:
        """The other nodes whose lease has not expired (callrouter.cluster.peers)."""
        ...
