"""An in-memory lease store on an injected clock (the database's time is the clock's), with the
same interface as callrouter.store.leases.PostgresLeases (checked in test_services), and a
follower that records when it is started and stopped."""

from dataclasses import dataclass, field

from twisted.application.service import Service
from twisted.internet import defer

from callrouter.cluster.lease import EXPIRED, RENEWED, SUPERSEDED
from callrouter.cluster.ports import Acquired


@dataclass
class FakeDatabase:
    clock: object
    nodes: dict = field(default_factory=dict)   # node -> [epoch, expires_at]
    leads: dict = field(default_factory=dict)   # role -> [node, epoch, term]

    def now(self) -> float:
        return self.clock.seconds()

    def valid(self, node, epoch) -> bool:
        row = self.nodes.get(node)
        return row is not None and row[0] == epoch and row[1] > self.now()


class FakeLeases:
    """One node's way to the FakeDatabase: `reachable` False makes every call fail."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.reachable = True

    def _reach(self) -> None:
        if not self.reachable:
            raise ConnectionError("database unreachable")

    def acquire(self, node: str, lease_s: float, host: str, pid: int) -> Acquired:
        self._reach()
        row = self.db.nodes.get(node)
        displaced = row is not None and row[1] > self.db.now()
        epoch = row[0] + 1 if row else 1
        self.db.nodes[node] = [epoch, self.db.now() + lease_s]
        return Acquired(epoch, displaced)

    def renew(self, node: str, epoch: int, lease_s: float) -> str:
        self._reach()
        row = self.db.nodes.get(node)
        if row is None or row[0] != epoch:
            return SUPERSEDED
        if row[1] <= self.db.now():
            return EXPIRED
        row[1] = self.db.now() + lease_s
        return RENEWED

    def release(self, node: str, epoch: int) -> None:
        self._reach()
        row = self.db.nodes.get(node)
        if row is not None and row[0] == epoch:
            row[1] = min(row[1], self.db.now())

    def take_lead(self, role: str, node: str, epoch: int, wait_s: float) -> int | None:
        self._reach()
        lead = self.db.leads.get(role)
        if lead is not None and (lead[0], lead[1]) == (node, epoch):
            return lead[2] if self.db.valid(node, epoch) else None
        if lead is not None and lead[0] is not None and self.db.valid(lead[0], lead[1]):
            return None
        if not self.db.valid(node, epoch):
            return None
        term = (lead[2] if lead else 0) + 1
        self.db.leads[role] = [node, epoch, term]
        return term

    def release_lead(self, role: str, node: str, epoch: int) -> None:
        self._reach()
        lead = self.db.leads.get(role)
        if lead is not None and (lead[0], lead[1]) == (node, epoch):
            lead[0] = lead[1] = None

    def live_peers(self, node: str) -> tuple[str, ...]:
        self._reach()
        return tuple(sorted(n for n, row in self.db.nodes.items() if n != node and row[1] > self.db.now()))


class FakeFollower(Service):
    """Implements callrouter.cluster.leader.Follower."""

    def __init__(self) -> None:
        self.starts = self.stops = self.reconciles = 0
        self.ready = defer.succeed(None)

    def startService(self) -> None:
        super().startService()
        self.starts += 1
        self.ready = defer.succeed(None)

    def stopService(self):
        super().stopService()
        self.stops += 1

    def reconcile(self):
        self.reconciles += 1


def sync(f, *args):
    return defer.maybeDeferred(f, *args)


class Token:
    """A FenceSource holding one token; records what the database refused."""

    def __init__(self, fence):
        self.fence, self.refusals = fence, []

    def current(self):
        return self.fence

    def refused(self, fence, reason):
        self.refusals.append(reason)
        self.fence = None
