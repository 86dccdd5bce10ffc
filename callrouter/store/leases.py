"""Node leases, leads and fencing on PostgreSQL (see docs/operations.md, "Several nodes").

Every comparison with an expiry uses the database's clock (`clock_timestamp()`), read *after* the
rows it concerns are locked, so the nodes' clocks never matter and each decision sees the last
committed state:

- acquire: lock the node's row, bump its epoch (whatever the old lease's state: a restarted node
  need not wait, and an older process of the same name is fenced out), expiry = now + lease.
- renew: lock the row; renewed only if the epoch is still ours and the lease has not expired. An
  expired lease is never renewed: the node comes back under a new epoch.
- take a lead: lock the role's row, then its holder's lease row; taken only when nobody holds it
  or the holder's lease (that epoch) is gone, and only by a node whose own lease holds.
- fenced writes (FencedDatabase): the transaction first reads the role's row FOR SHARE, checking it
  names this node, epoch and term, and that this node's lease holds. Taking the lead locks that
  row FOR UPDATE, so it waits for every fenced transaction in flight: whatever a leader wrote is
  committed before the next one's term begins, and nothing it tries afterwards commits.

A process paused in the middle of a transaction (SIGSTOP, a frozen VM) would keep its row locks:
each of these transactions sets `idle_in_transaction_session_timeout` to the lease's length, so
PostgreSQL ends such a session and the survivor's takeover goes through. `lock_timeout` bounds the
waits, so a tick never hangs on a lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Iterator

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callrouter.cluster.lease import EXPIRED, RENEWED, SUPERSEDED
from callrouter.cluster.ports import Acquired, Fenced, FenceSource
from callrouter.store.db import Database
from callrouter.store.escalations import EscalationRepository, EscalationView, OnChange
from callrouter.store.models import EscalationStepRecord, LeadRecord, NodeLeaseRecord

RELEASE_WAIT_S = 5.0


def lease_store(db: Database) -> "PostgresLeases | None":
    """The lease rows for several nodes on PostgreSQL; None on SQLite (one node, always held)."""
    return PostgresLeases(db) if db.engine.dialect.name == "postgresql" else None


def _limits(s: Session, hold_s: float, wait_s: float) -> None:
    """Bounds on this transaction's life if its process stalls, and on its waits for locks."""
    s.execute(_set("idle_in_transaction_session_timeout", hold_s))
    s.execute(_set("lock_timeout", wait_s))


def _set(name: str, seconds: float):
    return text(f"SET LOCAL {name} = {max(1, int(seconds * 1000))}")  # an int: nothing to bind


def _now(s: Session) -> dt.datetime:
    return s.scalar(select(func.clock_timestamp()))


class PostgresLeases:
    """Implements callrouter.cluster.ports.LeaseStore. Blocking: one short transaction per call."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def acquire(self, node: str, lease_s: float, host: str, pid: int) -> Acquired:
        try:
            with self._db.transaction() as s:
                _limits(s, lease_s, lease_s)
                row = s.get(NodeLeaseRecord, node, with_for_update=True)
                now = _now(s)
                expires = now + dt.timedelta(seconds=lease_s)
                if row is None:
                    s.add(NodeLeaseRecord(node_id=node, epoch=1, expires_at=expires, acquired_at=now,
                                          renewed_at=now, host=host[:255], pid=pid))
                    return Acquired(1, False)
                displaced = row.expires_at > now
                row.epoch, row.expires_at, row.acquired_at, row.renewed_at = row.epoch + 1, expires, now, now
                row.host, row.pid = host[:255], pid
                return Acquired(row.epoch, displaced)
        except IntegrityError:  # another process of this name inserted it first: try again
            return self.acquire(node, lease_s, host, pid)

    def renew(self, node: str, epoch: int, lease_s: float) -> str:
        with self._db.transaction() as s:
            _limits(s, lease_s, lease_s)
            row = s.get(NodeLeaseRecord, node, with_for_update=True, populate_existing=True)
            if row is None or row.epoch != epoch:
                return SUPERSEDED
            now = _now(s)
            if row.expires_at <= now:
                return EXPIRED
            row.expires_at, row.renewed_at = now + dt.timedelta(seconds=lease_s), now
            return RENEWED

    def release(self, node: str, epoch: int) -> None:
        with self._db.transaction() as s:
            _limits(s, RELEASE_WAIT_S, RELEASE_WAIT_S)
            s.execute(update(NodeLeaseRecord)
                      .where(NodeLeaseRecord.node_id == node, NodeLeaseRecord.epoch == epoch,
                             NodeLeaseRecord.expires_at > func.clock_timestamp())
                      .values(expires_at=func.clock_timestamp()))

    def live_peers(self, node: str) -> tuple[str, ...]:
        """The other nodes whose lease has not expired (on the database's clock), by name."""
        with self._db.transaction() as s:
            _limits(s, RELEASE_WAIT_S, RELEASE_WAIT_S)
            return tuple(s.scalars(select(NodeLeaseRecord.node_id).where(
                NodeLeaseRecord.node_id != node, NodeLeaseRecord.expires_at > func.clock_timestamp())
                .order_by(NodeLeaseRecord.node_id)))

    def take_lead(self, role: str, node: str, epoch: int, wait_s: float) -> int | None:
        with self._db.transaction() as s:
            peek = s.get(LeadRecord, role)
            if peek is not None and (peek.node_id, peek.node_epoch) == (node, epoch):
                return peek.term if self._holds(s, node, epoch) else None
            if peek is not None and peek.node_id is not None and self._holds(s, peek.node_id, peek.node_epoch):
                return None
        return self._take(role, node, epoch, wait_s)

    def _take(self, role: str, node: str, epoch: int, wait_s: float) -> int | None:
        try:
            with self._db.transaction() as s:
                _limits(s, wait_s * 2, wait_s)
                lead = s.get(LeadRecord, role, with_for_update=True, populate_existing=True)
                if lead is None:
                    lead = LeadRecord(role=role, node_id=None, node_epoch=None, term=0)
                    s.add(lead)
                    s.flush()
                holder = (s.get(NodeLeaseRecord, lead.node_id, with_for_update=True, populate_existing=True)
                          if lead.node_id is not None else None)
                mine = s.get(NodeLeaseRecord, node, with_for_update=True, populate_existing=True)
                now = _now(s)
                if (holder is not None and holder.epoch == lead.node_epoch and holder.expires_at > now
                        and (lead.node_id, lead.node_epoch) != (node, epoch)):
                    return None
                if mine is None or mine.epoch != epoch or mine.expires_at <= now:
                    return None
                if (lead.node_id, lead.node_epoch) != (node, epoch):
                    lead.node_id, lead.node_epoch, lead.term, lead.acquired_at = node, epoch, lead.term + 1, now
                return lead.term
        except IntegrityError:  # another node created the role's row first: its next tick decides
            return None

    def release_lead(self, role: str, node: str, epoch: int) -> None:
        with self._db.transaction() as s:
            _limits(s, RELEASE_WAIT_S, RELEASE_WAIT_S)
            s.execute(update(LeadRecord)
                      .where(LeadRecord.role == role, LeadRecord.node_id == node, LeadRecord.node_epoch == epoch)
                      .values(node_id=None, node_epoch=None))

    @staticmethod
    def _holds(s: Session, node: str, epoch: int | None) -> bool:
        return s.scalar(select(NodeLeaseRecord.node_id).where(
            NodeLeaseRecord.node_id == node, NodeLeaseRecord.epoch == epoch,
            NodeLeaseRecord.expires_at > func.clock_timestamp())) is not None


class FencedDatabase:
    """A Database whose every transaction carries `fence`'s current token, checked in the
    transaction itself: refused (Fenced, nothing written) when this node does not lead."""

    def __init__(self, db: Database, fence: FenceSource, hold_s: float) -> None:
        self._db, self._fence, self._hold_s = db, fence, hold_s
        self.engine = db.engine

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        token = self._fence.current()
        if token is None:
            raise Fenced("this node does not hold the lead")
        with self._db.transaction() as s:
            _limits(s, self._hold_s, self._hold_s)
            held = s.execute(
                select(LeadRecord.term)
                .join(NodeLeaseRecord, (NodeLeaseRecord.node_id == LeadRecord.node_id)
                      & (NodeLeaseRecord.epoch == LeadRecord.node_epoch))
                .where(LeadRecord.role == token.role, LeadRecord.node_id == token.node,
                       LeadRecord.node_epoch == token.epoch, LeadRecord.term == token.term,
                       NodeLeaseRecord.expires_at > func.clock_timestamp())
                .with_for_update(read=True, of=LeadRecord)).first()
            if held is None:
                reason = "another node leads now, or this node's lease expired"
                self._fence.refused(token, reason)
                raise Fenced(f"{token.role} lead of {token.node} (term {token.term}) refused: {reason}")
            yield s


class LeaderChains(EscalationRepository):
    """The escalation engine's chains on a node of several: running a chain (claiming, sending,
    ending, its duty alerts) needs the lead and is fenced by it; starting one is a patient's or a
    secretary's request, recorded by any node, which the leading node then takes."""

    def __init__(self, db: Database, fence: FenceSource, node: str, on_change: OnChange | None = None,
                 hold_s: float = 10.0) -> None:
        super().__init__(FencedDatabase(db, fence, hold_s), node, on_change)  # type: ignore[arg-type]
        self._starts = EscalationRepository(db, node, on_change)

    def create(self, call_id: str | None, practice: str, tier: str, caller: str | None,
               now: dt.datetime, dialplan_version: str | None = None, triggered_by: str | None = None,
               note: str | None = None) -> EscalationView:
        return self._starts.create(call_id, practice, tier, caller, now, dialplan_version, triggered_by, note)

    def mark_interrupted_sends(self) -> int:
        """On taking the lead: every step still `sending` was claimed by an earlier leader (this
        node before a restart, or one that died or was fenced out), whose send may or may not have
        left: `unknown`, never sent again (its late answer, if any, is refused by the fence)."""
        with self._db.transaction() as s:
            result = s.execute(update(EscalationStepRecord).where(EscalationStepRecord.state == "sending")
                               .values(state="unknown", error="interrupted by a change of leading node; not re-sent"))
            return result.rowcount
