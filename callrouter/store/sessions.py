"""The console's sign-ins kept in the database, so that a restart of the service signs nobody out.

A row per session (table `console_sessions`, callrouter.store.models.ConsoleSession): the SHA-256
of the session id the browser holds in its cookie (never the id itself), the row id of the API
token the session stands for (never the token: only its hash is stored, in `api_tokens`), the
session's CSRF token and when it was last used. Closing a session deletes its row and revokes its
token in one transaction; revoking the token (a user disabled) deletes the row with it (foreign
key ON DELETE CASCADE).

`last_seen` is written by the caller at most once a minute per session
(callrouter.web.sessions), so the sweep of idle sessions allows for that lag.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from callrouter.store.db import Database
from callrouter.store.models import ApiToken, ConsoleSession
from callrouter.store.users import hash_token


@dataclass(frozen=True)
class StoredSession:
    id_hash: str
    token_id: int
    username: str
    csrf: str
    created_at: dt.datetime
    last_seen: dt.datetime


class ConsoleSessionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def open(self, id_hash: str, token: str, username: str, csrf: str, now: dt.datetime) -> StoredSession:
        """A new session standing for the API token `token` (issued by UserRepository.login)."""
        with self._db.transaction() as s:
            token_id = s.scalar(select(ApiToken.id).where(ApiToken.token_hash == hash_token(token)))
            if token_id is None:
                raise LookupError("no such API token: sign in again")
            row = ConsoleSession(id_hash=id_hash, token_id=token_id, username=username, csrf=csrf,
                                 created_at=now, last_seen=now)
            s.add(row)
            s.flush()
            return _stored(row)

    def find(self, id_hash: str) -> StoredSession | None:
        with self._db.transaction() as s:
            row = s.get(ConsoleSession, id_hash)
            return None if row is None else _stored(row)

    def touch(self, id_hash: str, now: dt.datetime) -> None:
        """She used the session at `now` (never moves last_seen backwards)."""
        with self._db.transaction() as s:
            s.execute(update(ConsoleSession).where(ConsoleSession.id_hash == id_hash,
                                                   ConsoleSession.last_seen < now).values(last_seen=now))

    def close(self, id_hash: str) -> StoredSession | None:
        """Sign-out: the row deleted and its token revoked, together."""
        with self._db.transaction() as s:
            row = s.get(ConsoleSession, id_hash)
            if row is None:
                return None
            gone = _stored(row)
            s.delete(row)
            s.execute(delete(ApiToken).where(ApiToken.id == gone.token_id))
            return gone

    def close_idle(self, unused_since: dt.datetime) -> list[StoredSession]:
        """The sessions not used after `unused_since`, closed (rows deleted, tokens revoked)."""
        with self._db.transaction() as s:
            rows = list(s.scalars(select(ConsoleSession).where(ConsoleSession.last_seen <= unused_since)))
            gone = [_stored(r) for r in rows]
            if gone:
                s.execute(delete(ConsoleSession).where(ConsoleSession.id_hash.in_([g.id_hash for g in gone])))
                s.execute(delete(ApiToken).where(ApiToken.id.in_([g.token_id for g in gone])))
            return gone


def _stored(row: ConsoleSession) -> StoredSession:
    return StoredSession(row.id_hash, row.token_id, row.username, row.csrf, row.created_at, row.last_seen)
