"""Models of the team (who covers which queue, skill levels, pause reasons, the state history)
and of the console's sessions. Re-exported by callrouter.store.models, whose metadata they share."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callrouter.store.base import Base, UtcDateTime


class TeamSecretary(Base):
    """A member of the secretariat's team as dispatch sees her: a username (a softphone registered
    at the edge) or a sip: URI (a fixed phone). The team lives in the database (edited live from the
    wallboard and the API); the settings file's `controller.secretaries` only seeds it once."""

    __tablename__ = "team_secretaries"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    added_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class TeamCoverage(Base):
    """She covers `key` ("practice/queue", "practice/*", "line:<name>" or "*"); `position` is her
    place in that key's list (ties in the serving order end on it)."""

    __tablename__ = "team_coverage"

    secretary: Mapped[str] = mapped_column(ForeignKey("team_secretaries.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class TeamLevel(Base):
    """Her skill level for a practice (or "*"), for queues with the `skill` strategy."""

    __tablename__ = "team_levels"

    secretary: Mapped[str] = mapped_column(ForeignKey("team_secretaries.id", ondelete="CASCADE"), primary_key=True)
    practice: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)


class PauseReason(Base):
    """The reasons a secretary may give for a pause, in the order the console lists them."""

    __tablename__ = "pause_reasons"

    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    reason: Mapped[str] = mapped_column(String(40), unique=True)


class TeamVersion(Base):
    """One row: the team's version (bumped by every change) and when it was seeded and changed."""

    __tablename__ = "team_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer)
    seeded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class SecretaryStateChange(Base):
    """A change of a secretary's state and who made it: a user's name, or "system:<cause>"
    (system:missed_offers, system:registration...). Appended, never updated."""

    __tablename__ = "secretary_state_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    secretary: Mapped[str] = mapped_column(String(200), index=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(80))
    by: Mapped[str] = mapped_column(String(64))


class ConsoleSession(Base):
    """A console sign-in, kept so that a restart of the service signs nobody out. The browser holds
    the session id (HttpOnly cookie); only its SHA-256 is stored. It stands for one API token
    (revoking the token ends the session)."""

    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime())
