"""The shared desk on PostgreSQL: secretaries' states, every node's waiting calls, and the offers,
at most one active per secretary (see callrouter.domain.desk_view and docs/operations.md, "Several
nodes"). Blocking: each method is one short transaction, run in the reactor's thread pool.

- A claim (an offer of a call to one or more secretaries) is fenced by the node's lease: the
  transaction first reads this node's lease row FOR SHARE and checks the epoch and the expiry on
  the database's clock, so a node whose lease is gone rings nobody. It then locks the chosen
  secretaries' rows FOR UPDATE SKIP LOCKED (one another node is deciding for right now is not
  waited for: the claim is refused and the node dispatches again), checks, in the same
  transaction, that the serving order over the view read *after* those locks still gives her this
  call (`check`), and inserts the offers under the unique partial index: a second active offer
  for one secretary is refused by the database itself, whatever the node. Each offer keeps the
  waiting calls that check read (`seen`): the order holds over exactly those rows (a call whose
  row another node has not committed yet cannot be seen).
- Ending an offer, marking it answered, and a secretary's login or pause are facts, written by
  whichever node has them and never refused for want of a lease (refusing to end an offer would
  keep her busy for good).
- Rows of a node whose lease (that epoch) is gone are void: the view ignores them, and `sweep`
  deletes the void waiting rows and ends the void offers (`node_lost`).
- Every change notifies the channel `callrouter_desk` (pg_notify, sent at commit), which wakes the
  other nodes' dispatchers; they also reconcile every second for what a notification missed.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Callable, Iterable

from sqlalchemy import delete, exists, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callrouter.domain.desk_view import DeskView, OfferRow, SecretaryRow, WaitingRow
from callrouter.domain.serving import ANSWERS_KEPT
from callrouter.store.db import Database
from callrouter.store.models import DeskOffer, DeskSecretary, DeskWaiting, NodeLeaseRecord

CHANNEL = "callrouter_desk"
HOLD_S = 5.0  # a claim's transaction is ended by the server if its process stalls this long
LOST = "node_lost"


@dataclass(frozen=True)
class Claim:
    granted: bool
    why: str = ""   # when refused: "fenced", "busy" (locked or offered elsewhere), "order", "gone"


Check = Callable[[DeskView], bool]


def _live(node_col, epoch_col):
    """The row's node holds its lease under that epoch, on the database's clock."""
    return exists().where(NodeLeaseRecord.node_id == node_col, NodeLeaseRecord.epoch == epoch_col,
                          NodeLeaseRecord.expires_at > func.clock_timestamp())


def _notify(s: Session, node: str) -> None:
    s.execute(select(func.pg_notify(CHANNEL, node)))


class DeskStore:
    """Implements the shared desk's store for node `node` (callrouter.controller.shared_desk)."""

    def __init__(self, db: Database, node: str) -> None:
        self._db, self.node = db, node

    # --- the view -------------------------------------------------------------------------------

    def view(self, now: dt.datetime | None = None) -> DeskView:
        """Everything dispatch needs, read in one snapshot: the live nodes' waiting calls and
        active offers, every secretary's state, when each became free, her answers of two days."""
        with self._db.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            with Session(bind=conn) as s, s.begin():
                return _read_view(s, now)

    def sweep(self) -> int:
        """Deletes the waiting rows and ends the offers of nodes whose lease is gone; how many."""
        with self._db.transaction() as s:
            gone = s.execute(delete(DeskWaiting).where(~_live(DeskWaiting.node_id, DeskWaiting.node_epoch)))
            ended = s.execute(update(DeskOffer)
                              .where(DeskOffer.ended_at.is_(None), ~_live(DeskOffer.node_id, DeskOffer.node_epoch))
                              .values(ended_at=func.clock_timestamp(), outcome=LOST))
            count = (gone.rowcount or 0) + (ended.rowcount or 0)
            if count:
                _notify(s, self.node)
            return count

    # --- waiting calls (this node's) -------------------------------------------------------------

    def put_waiting(self, row: WaitingRow, epoch: int) -> bool:
        """A call of this node waits (again) at its place; False when this node's lease is gone."""
        with self._db.transaction() as s:
            if not self._holds(s, epoch):
                return False
            values = dict(node_id=self.node, node_epoch=epoch, practice=row.practice, queue=row.queue,
                          line=row.line, priority=row.priority, enqueued_at=row.enqueued_at, seq=row.seq,
                          strategy=row.strategy, zone=row.zone, tried=json.dumps(sorted(row.tried)),
                          offered=row.offered)
            s.execute(pg_insert(DeskWaiting).values(call_id=row.call_id, **values)
                      .on_conflict_do_update(index_elements=[DeskWaiting.call_id], set_=values))
            _notify(s, self.node)
            return True

    def remove_waiting(self, call_id: str) -> None:
        with self._db.transaction() as s:
            if s.execute(delete(DeskWaiting).where(DeskWaiting.call_id == call_id)).rowcount:
                _notify(s, self.node)

    # --- offers ---------------------------------------------------------------------------------

    def claim(self, call_id: str, secretaries: Iterable[str], epoch: int, check: Check | None = None) -> Claim:
        """Offers `call_id` (waiting on this node) to `secretaries`, all or none (see the module)."""
        wanted = sorted(set(secretaries))
        try:
            with self._db.transaction() as s:
                s.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {int(HOLD_S * 1000)}"))
                if not self._holds(s, epoch, share=True):
                    return Claim(False, "fenced")
                self._ensure(s, wanted)
                locked = s.scalars(select(DeskSecretary.secretary).where(DeskSecretary.secretary.in_(wanted))
                                   .with_for_update(skip_locked=True)).all()
                if len(locked) != len(wanted):
                    return Claim(False, "busy")
                waiting = s.get(DeskWaiting, call_id, with_for_update=True, populate_existing=True)
                if waiting is None or (waiting.node_id, waiting.node_epoch) != (self.node, epoch) or waiting.offered:
                    return Claim(False, "gone")
                fresh = _read_view(s, None)
                if check is not None and not check(fresh):
                    return Claim(False, "order")
                now = s.scalar(select(func.clock_timestamp()))
                seen = json.dumps(sorted(r.call_id for r in fresh.waiting))
                for who in wanted:
                    s.add(DeskOffer(call_id=call_id, secretary=who, node_id=self.node, node_epoch=epoch, offered_at=now,
                                    seen=seen))
                s.flush()
                waiting.offered = True
                _notify(s, self.node)
                return Claim(True)
        except IntegrityError:  # the unique index: one of them has an active offer (another node's)
            return Claim(False, "busy")

    def hold(self, call_id: str, secretary: str, epoch: int) -> bool:
        """An active offer for her that no dispatch claimed (she calls a patient back from her
        console, takes over a colleague's call, or this node came back under a new epoch with her
        still on its call): False when the lease is gone or she has another active offer."""
        try:
            with self._db.transaction() as s:
                if not self._holds(s, epoch, share=True):
                    return False
                s.execute(update(DeskOffer).where(DeskOffer.secretary == secretary, DeskOffer.ended_at.is_(None),
                                                  DeskOffer.node_id == self.node, DeskOffer.node_epoch < epoch)
                          .values(ended_at=func.clock_timestamp(), outcome="superseded"))
                if s.scalar(select(DeskOffer.id).where(
                        DeskOffer.secretary == secretary, DeskOffer.ended_at.is_(None), DeskOffer.call_id == call_id,
                        DeskOffer.node_id == self.node, DeskOffer.node_epoch == epoch)) is not None:
                    return True  # held already (asked again by a reconcile)
                s.add(DeskOffer(call_id=call_id, secretary=secretary, node_id=self.node, node_epoch=epoch,
                                offered_at=s.scalar(select(func.clock_timestamp()))))
                s.flush()
                _notify(s, self.node)
                return True
        except IntegrityError:
            return False

    def answered(self, call_id: str, secretary: str) -> None:
        with self._db.transaction() as s:
            s.execute(update(DeskOffer).where(DeskOffer.call_id == call_id, DeskOffer.secretary == secretary,
                                              DeskOffer.ended_at.is_(None))
                      .values(answered_at=func.clock_timestamp()))
            _notify(s, self.node)

    def end(self, call_id: str, secretary: str, outcome: str) -> None:
        """Her offer for `call_id` is over (not taken, or her call and wrap-up are): she is free."""
        with self._db.transaction() as s:
            if s.execute(update(DeskOffer).where(DeskOffer.call_id == call_id, DeskOffer.secretary == secretary,
                                                 DeskOffer.ended_at.is_(None))
                         .values(ended_at=func.clock_timestamp(), outcome=outcome[:32])).rowcount:
                _notify(s, self.node)

    def mine(self, epoch: int) -> list[OfferRow]:
        """This node's active offers under `epoch`."""
        with self._db.transaction() as s:
            rows = s.scalars(select(DeskOffer).where(DeskOffer.node_id == self.node, DeskOffer.node_epoch == epoch,
                                                     DeskOffer.ended_at.is_(None)))
            return [OfferRow(r.call_id, r.secretary, r.node_id, r.answered_at is not None) for r in rows]

    # --- secretaries' states ----------------------------------------------------------------------

    def set_state(self, state: SecretaryRow, by: str | None) -> None:
        values = dict(logged_in=state.logged_in, paused=state.paused, auto_paused=state.auto_paused,
                      missed=state.missed, updated_at=func.clock_timestamp(), updated_by=by)
        with self._db.transaction() as s:
            s.execute(pg_insert(DeskSecretary).values(secretary=state.secretary, **values)
                      .on_conflict_do_update(index_elements=[DeskSecretary.secretary], set_=values))
            _notify(s, self.node)

    def seed_states(self, states: Iterable[SecretaryRow]) -> None:
        """Rows for secretaries who have none yet (this node's saved states, or the defaults)."""
        with self._db.transaction() as s:
            for state in states:
                s.execute(pg_insert(DeskSecretary).values(
                    secretary=state.secretary, logged_in=state.logged_in, paused=state.paused,
                    auto_paused=state.auto_paused, missed=state.missed, updated_at=func.clock_timestamp(),
                    updated_by="system:seed").on_conflict_do_nothing(index_elements=[DeskSecretary.secretary]))

    # --- helpers --------------------------------------------------------------------------------

    def _holds(self, s: Session, epoch: int, share: bool = False) -> bool:
        q = select(NodeLeaseRecord.node_id).where(NodeLeaseRecord.node_id == self.node, NodeLeaseRecord.epoch == epoch,
                                                  NodeLeaseRecord.expires_at > func.clock_timestamp())
        return s.execute(q.with_for_update(read=True) if share else q).first() is not None

    @staticmethod
    def _ensure(s: Session, ids: list[str]) -> None:
        """Rows to lock for secretaries never seen yet (a fixed phone, logged in, not paused)."""
        for who in ids:
            s.execute(pg_insert(DeskSecretary).values(secretary=who, logged_in=True, paused=None, auto_paused=False,
                                                      missed=0, updated_at=func.clock_timestamp(),
                                                      updated_by="system:seed")
                      .on_conflict_do_nothing(index_elements=[DeskSecretary.secretary]))


def _read_view(s: Session, now: dt.datetime | None) -> DeskView:
    waiting = tuple(
        WaitingRow(r.call_id, r.node_id, r.practice, r.queue, r.line, r.priority, r.enqueued_at, r.seq, r.strategy,
                   r.zone, frozenset(json.loads(r.tried or "[]")), r.offered)
        for r in s.scalars(select(DeskWaiting).where(_live(DeskWaiting.node_id, DeskWaiting.node_epoch))))
    offers = tuple(
        OfferRow(r.call_id, r.secretary, r.node_id, r.answered_at is not None)
        for r in s.scalars(select(DeskOffer).where(DeskOffer.ended_at.is_(None),
                                                   _live(DeskOffer.node_id, DeskOffer.node_epoch))))
    states = {r.secretary: SecretaryRow(r.secretary, r.logged_in, r.paused, r.auto_paused, r.missed)
              for r in s.scalars(select(DeskSecretary))}
    idle = {who: at.timestamp() for who, at in s.execute(
        select(DeskOffer.secretary, func.max(DeskOffer.ended_at)).where(DeskOffer.ended_at.is_not(None))
        .group_by(DeskOffer.secretary)) if at is not None}
    since = (now or s.scalar(select(func.clock_timestamp()))) - ANSWERS_KEPT
    answers = tuple((r.secretary, r.call_id, r.answered_at) for r in s.scalars(
        select(DeskOffer).where(DeskOffer.answered_at.is_not(None), DeskOffer.answered_at > since)))
    return DeskView(waiting, offers, states, idle, answers)
