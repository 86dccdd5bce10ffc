"""The audit chain's head anchored outside the database: an HMAC over it, keyed by a file.

The hash chain (callrouter.store.audit) catches an entry altered, inserted or deleted, but not a
rewrite of the whole chain by someone with write access to the database: they can recompute
every hash. So each append (and each purge, which moves the start of the chain) also writes
`audit_head.head_mac` = HMAC-SHA256(key, anchor and head), with a key read from a file outside
the database (`auth.audit_key_file`, mode 0600). Without the key nobody can write a head the
verification accepts: `GET /api/audit/verify` and `callrouter db verify-audit` report the rewrite.

The key is known per database (`use_key(db, key)`, done by the service and the CLI when they open
it), since appends happen inside many repositories' transactions. A process that appends without
the key writes no MAC, which the verification reports too: every writer must have the key file
(copy it to every node).

Limit: a rollback to an earlier state of the whole database (an old backup, head and MAC
included) still verifies; compare the head the verification reports with one recorded earlier.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import weakref
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from callrouter.auth import sealing
from callrouter.auth.sealing import KeyFileError
from callrouter.store.db import Database
from callrouter.store.models import AuditHead

logger = logging.getLogger(__name__)

_KEYS: "weakref.WeakKeyDictionary[Engine, bytes]" = weakref.WeakKeyDictionary()


def head_mac(key: bytes, anchor_seq: int, anchor_hash: str, last_seq: int, last_hash: str) -> str:
    message = f"callrouter audit head\n{anchor_seq}\n{anchor_hash}\n{last_seq}\n{last_hash}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def use_key(db: Database, key: bytes) -> None:
    """Anchor the audit chain of `db` with `key` in this process from now on."""
    _KEYS[db.engine] = key


def key_of(session: Session) -> bytes | None:
    bind = session.get_bind()
    return _KEYS.get(getattr(bind, "engine", bind))


def seal_head(session: Session, head: AuditHead) -> None:
    """Write the head's MAC (inside the appending or purging transaction); none without the key."""
    key = key_of(session)
    head.head_mac = (None if key is None else
                     head_mac(key, head.anchor_seq, head.anchor_hash, head.last_seq, head.last_hash))


def head_problem(session: Session, head: AuditHead) -> str | None:
    """Why the head is not the one the key holder wrote, or None (None too when no key is known)."""
    key = key_of(session)
    if key is None:
        return None
    if head.head_mac is None:
        return ("the chain's head carries no anchor MAC: written without the audit key, or its MAC "
                "removed in the database")
    expected = head_mac(key, head.anchor_seq, head.anchor_hash, head.last_seq, head.last_hash)
    if not hmac.compare_digest(expected, head.head_mac):
        return ("the chain's head does not match its anchor MAC (audit key file): the chain was "
                "rewritten in the database")
    return None


def is_anchored(session: Session) -> bool:
    return key_of(session) is not None


def open_anchor(db: Database, path: Path) -> bytes:
    """The audit key from `path`, used for `db` from now on. The file is created (mode 0600) when
    missing and the chain was never anchored, and the current head adopted; a missing key for an
    anchored chain stops with what to do."""
    with db.transaction() as s:
        head = s.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
        if not path.exists():
            if head.head_mac is not None:
                raise KeyFileError(f"the audit key file {path} is missing, but the audit chain is anchored "
                                   "with a key: restore that file from your copy of it")
            key = sealing.create_key_file(path)
            logger.warning("created the audit key file %s (mode 0600): keep a copy of it apart from the "
                           "database's backups; the audit chain is anchored from entry %d on", path,
                           head.last_seq)
            adopt(db, s, head, key)
            return key
        key = sealing.read_key_file(path)
        if head.head_mac is None and (head.last_seq, head.anchor_seq) == (0, 0):
            adopt(db, s, head, key)  # an empty chain: nothing written without the key yet
        use_key(db, key)
        return key


def adopt(db: Database, s: Session, head: AuditHead, key: bytes) -> None:
    """Anchor the chain's current head with `key` (the head locked by the caller's transaction)."""
    use_key(db, key)
    seal_head(s, head)
