"""Users' TOTP secrets sealed at rest (callrouter.auth.sealing), with the key file outside the database.

- `open_secrets(db, path)` at start (the service and the CLI): the key file read, or created
  (mode 0600) when there is none *and* no secret in the database is sealed yet; a missing or
  different key while sealed secrets exist stops with what to do, never a new key that would lock
  every user out. Then `seal_plaintext` seals the secrets still in clear (those written before
  sealing existed): idempotent, one transaction.
- `rotate(db, old, new)`: every secret opened with the old key and sealed with the new one in one
  transaction; any secret that does not open aborts it all, nothing changed.

With a key configured, a secret found in clear is refused at login (someone with write access to
the database could otherwise put a secret of their choosing there), as is a sealed secret copied
from another user's row (the user's id is the associated data).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from callrouter.auth import sealing, totp
from callrouter.auth.sealing import KeyFileBox, KeyFileError, Sealer, SealingError
from callrouter.ports import Actor
from callrouter.store.audit import append
from callrouter.store.db import Database
from callrouter.store.models import User

logger = logging.getLogger(__name__)


def seal_secret(box: Sealer, user_id: int, secret: str) -> str:
    return box.seal(secret, totp.sealing_context(user_id))


def open_secret(box: Sealer | None, user: User) -> str | None:
    """The user's TOTP secret in clear, or None when it cannot be trusted (the reason logged)."""
    stored = user.totp_secret
    if box is None:  # a repository without a key (tests, tools): only clear secrets
        if sealing.is_sealed(stored):
            logger.error("TOTP secret of %s is sealed but no key is configured", user.username)
            return None
        return stored
    if not sealing.is_sealed(stored):
        logger.error("TOTP secret of %s is stored in clear: refused (`callrouter auth seal-secrets`)",
                     user.username)
        return None
    try:
        return box.open(stored, totp.sealing_context(user.id))
    except SealingError as exc:
        logger.error("TOTP secret of %s refused: %s", user.username, exc)
        return None


@dataclass(frozen=True)
class SecretsState:
    """How the users' secrets are stored: how many in clear, and sealed under which key ids."""

    clear: int
    sealed: dict[str, int]

    @property
    def sealed_total(self) -> int:
        return sum(self.sealed.values())


def secrets_state(db: Database) -> SecretsState:
    with db.transaction() as s:
        clear, sealed = 0, {}
        for stored in s.scalars(select(User.totp_secret)):
            kid = sealing.sealed_key_id(stored)
            if kid is None:
                clear += 1
            else:
                sealed[kid] = sealed.get(kid, 0) + 1
        return SecretsState(clear, sealed)


def open_secrets(db: Database, path: Path, actor: Actor, now: dt.datetime) -> KeyFileBox:
    """The key file's box, the file created when no secret is sealed yet; then every secret still
    in clear sealed. Raises KeyFileError with what to do when the key and the database disagree."""
    state = secrets_state(db)
    if not path.exists():
        if state.sealed_total:
            raise KeyFileError(
                f"the key file {path} is missing, but {state.sealed_total} TOTP secret(s) in the database "
                f"are sealed with key {', '.join(sorted(state.sealed))}: restore that file from your copy of "
                "it (a new key would lock every user out)")
        key = sealing.create_key_file(path)
        logger.warning("created the TOTP secrets' key file %s (mode 0600): keep a copy of it apart from "
                       "the database's backups", path)
        box = KeyFileBox(path, key)
    else:
        box = KeyFileBox(path)
    others = {kid: n for kid, n in state.sealed.items() if kid != box.key_id}
    if others:
        raise KeyFileError(
            f"{sum(others.values())} TOTP secret(s) are sealed with key {', '.join(sorted(others))}, but the "
            f"key file {path} holds key {box.key_id}: configure the file of that key (auth.secrets_key_file)")
    sealed = seal_plaintext(db, box, actor, now)
    if sealed:
        logger.warning("sealed %d TOTP secret(s) that were stored in clear", sealed)
    return box


def seal_plaintext(db: Database, box: Sealer, actor: Actor, now: dt.datetime) -> int:
    """Seal every secret still in clear, in one audited transaction; 0 when there is none
    (idempotent)."""
    with db.transaction() as s:
        users = [u for u in s.scalars(select(User).with_for_update()) if not sealing.is_sealed(u.totp_secret)]
        for user in users:
            user.totp_secret = seal_secret(box, user.id, user.totp_secret)
        if users:
            append(s, actor, "auth.secrets_sealed", "users", now,
                   details={"secrets": len(users), "key": box.key_id})
        return len(users)


def rotate(db: Database, old: Sealer, new: Sealer, actor: Actor, now: dt.datetime) -> int:
    """Re-seal every secret from `old` to `new` in one audited transaction; returns how many. A
    secret in clear is sealed with `new` too. Raises SealingError (nothing changed) when one does
    not open."""
    with db.transaction() as s:
        users = list(s.scalars(select(User).order_by(User.id).with_for_update()))
        for user in users:
            if sealing.is_sealed(user.totp_secret):
                try:
                    plain = old.open(user.totp_secret, totp.sealing_context(user.id))
                except SealingError as exc:
                    raise SealingError(f"the TOTP secret of {user.username} {exc}: nothing was changed") from None
            else:
                plain = user.totp_secret
            user.totp_secret = seal_secret(new, user.id, plain)
        append(s, actor, "auth.key_rotated", "users", now,
               details={"secrets": len(users), "from": old.key_id, "to": new.key_id})
        return len(users)
