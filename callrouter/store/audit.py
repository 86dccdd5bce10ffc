"""The audit trail: append-only, hash-chained, verifiable after retention purges.

Each entry's hash is sha256(prev_hash + canonical JSON of its content). The single `audit_head` row
holds the newest entry (so a deleted tail is caught) and the anchor: the last purged entry, from
which verification starts. Appends lock that row first, so concurrent writers (threads, or several
nodes on PostgreSQL) cannot fork the chain. Entries are written in the same transaction as the
change they describe: an action that fails leaves no entry, and an entry never describes a change
that did not happen.

Someone with write access to the database could rewrite the whole chain, head included, and
recompute every hash; the head is therefore also anchored outside the database, by an HMAC keyed
with a file the database does not hold (callrouter.store.audit_anchor), which every append and
purge renews and the verification checks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from callrouter.ports import Actor
from callrouter.store.audit_anchor import head_problem, is_anchored, seal_head
from callrouter.store.db import Database
from callrouter.store.models import AuditEntry, AuditHead

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64


SYSTEM = Actor("system", "scheduler")


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    error: str | None = None
    bad_seq: int | None = None
    # The newest entry: record (seq, hash) outside the database, e.g. daily, and a later rewrite
    # of the whole chain no longer matches it.
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    anchored: bool = False  # the head was also checked against its MAC (the audit key file)


def canonical(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(prev_hash: str, seq: int, at: dt.datetime, actor: str, source: str, action: str,
               target: str, before: str | None, after: str | None, details: str | None) -> str:
    content = canonical({
        "seq": seq, "at": at.astimezone(dt.timezone.utc).isoformat(), "actor": actor,
        "source": source, "action": action, "target": target, "before": before, "after": after,
        "details": details,
    })
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


def append(session: Session, actor: Actor, action: str, target: str, now: dt.datetime,
           before: Any = None, after: Any = None, details: Any = None) -> AuditEntry:
    """Add an entry inside the caller's transaction."""
    # Lock the head row first (row lock on PostgreSQL, write lock on SQLite).
    session.execute(update(AuditHead).where(AuditHead.id == 1)
                    .values(last_seq=AuditHead.last_seq))
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)
                           .execution_options(populate_existing=True)).scalar_one()
    seq = head.last_seq + 1
    fields = dict(at=now, actor=actor.name, source=actor.source, action=action, target=target,
                  before=canonical(before), after=canonical(after), details=canonical(details))
    digest = entry_hash(head.last_hash, seq, **fields)
    entry = AuditEntry(seq=seq, prev_hash=head.last_hash, hash=digest, **fields)
    session.add(entry)
    head.last_seq, head.last_hash = seq, digest
    seal_head(session, head)
    session.flush()
    logger.info("audit #%s %s %s by %s from %s", seq, action, target, actor.name, actor.source)
    return entry


def trace_read(session: Session, actor: Actor, action: str, target: str, now: dt.datetime,
               records: int, filters: Any = None) -> AuditEntry:
    """Trace a read of patient data inside the reading transaction: who read what, with which
    filters (`None`: a single record asked by id), and how many records it returned."""
    details = {"records": records} if filters is None else {"filters": filters, "records": records}
    return append(session, actor, action, target, now, details=details)


def purge_before(session: Session, cutoff: dt.datetime) -> int:
    """Delete the oldest entries up to the newest one older than `cutoff`; move the anchor there.

    Deletes a prefix of the chain by sequence, so the rest stays verifiable from the anchor.
    """
    last = session.scalar(select(func.max(AuditEntry.seq)).where(AuditEntry.at < cutoff))
    if last is None:
        return 0
    anchor = session.get(AuditEntry, last)
    session.execute(update(AuditHead).where(AuditHead.id == 1)
                    .values(anchor_seq=anchor.seq, anchor_hash=anchor.hash))
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)
                           .execution_options(populate_existing=True)).scalar_one()
    seal_head(session, head)
    session.flush()
    result = session.execute(delete(AuditEntry).where(AuditEntry.seq <= last))
    return result.rowcount


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, actor: Actor, action: str, target: str, now: dt.datetime,
               before: Any = None, after: Any = None, details: Any = None) -> int:
        """Append an entry in its own transaction; returns its sequence number."""
        with self._db.transaction() as s:
            return append(s, actor, action, target, now, before, after, details).seq

    def query(self, since: dt.datetime | None = None, until: dt.datetime | None = None,
              actor: str | None = None, action: str | None = None,
              limit: int = 100) -> list[AuditEntry]:
        with self._db.transaction() as s:
            return self._query(s, since, until, actor, action, limit)

    def read(self, reader: Actor, now: dt.datetime, filters: Any, since: dt.datetime | None = None,
             until: dt.datetime | None = None, actor: str | None = None, action: str | None = None,
             limit: int = 100) -> list[AuditEntry]:
        """`query`, traced as an "audit.read" by `reader` in the same transaction."""
        with self._db.transaction() as s:
            entries = self._query(s, since, until, actor, action, limit)
            trace_read(s, reader, "audit.read", "audit", now, len(entries), filters)
            return entries

    @staticmethod
    def _query(s: Session, since: dt.datetime | None, until: dt.datetime | None, actor: str | None,
               action: str | None, limit: int) -> list[AuditEntry]:
        stmt = select(AuditEntry)
        if since is not None:
            stmt = stmt.where(AuditEntry.at >= since)
        if until is not None:
            stmt = stmt.where(AuditEntry.at < until)
        if actor is not None:
            stmt = stmt.where(AuditEntry.actor == actor)
        if action is not None:
            stmt = stmt.where(AuditEntry.action == action)
        return list(s.scalars(stmt.order_by(AuditEntry.seq.desc()).limit(limit)))

    def verify(self, batch: int = 1000) -> ChainReport:
        """Recompute the chain from the anchor to the head; report the first broken entry."""
        with self._db.transaction() as s:
            return verify_chain(s, batch)


def verify_chain(s: Session, batch: int = 1000, anchored: bool = True) -> ChainReport:
    """`AuditLog.verify` inside the caller's transaction; `anchored=False` checks the hashes only."""
    head = s.get(AuditHead, 1)
    prev_seq, prev_hash = head.anchor_seq, head.anchor_hash
    checked = 0
    while True:
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.seq > prev_seq)
                              .order_by(AuditEntry.seq).limit(batch)))
        if not rows:
            break
        for e in rows:
            if e.seq != prev_seq + 1:
                return ChainReport(False, checked, f"entries {prev_seq + 1}..{e.seq - 1} "
                                   "are missing", prev_seq + 1)
            if e.prev_hash != prev_hash:
                return ChainReport(False, checked, f"entry {e.seq} does not follow "
                                   "the previous entry", e.seq)
            expected = entry_hash(prev_hash, e.seq, e.at, e.actor, e.source, e.action,
                                  e.target, e.before, e.after, e.details)
            if e.hash != expected:
                return ChainReport(False, checked, f"entry {e.seq} was altered", e.seq)
            prev_seq, prev_hash = e.seq, e.hash
            checked += 1
    if (prev_seq, prev_hash) != (head.last_seq, head.last_hash):
        return ChainReport(False, checked, f"entries after {prev_seq} are missing "
                           f"(head is {head.last_seq})", prev_seq + 1)
    anchored = anchored and is_anchored(s)
    problem = head_problem(s, head) if anchored else None
    if problem is not None:
        return ChainReport(False, checked, problem, anchored=True)
    return ChainReport(True, checked, head_seq=head.last_seq, head_hash=head.last_hash, anchored=anchored)
