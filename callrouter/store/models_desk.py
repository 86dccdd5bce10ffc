"""The shared desk: the secretaries' states, the waiting calls and the offers of every node sharing a
PostgreSQL, as rows (see callrouter.store.desk and docs/operations.md, "Several nodes"). Re-exported
by callrouter.store.models, whose metadata they share. On SQLite (one node) the tables stay empty:
the single node keeps its desk in memory and `var/secretaries.json`."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from callrouter.store.base import Base, UtcDateTime


class DeskSecretary(Base):
    """A secretary's login and pause as every node sees them (the shared `var/secretaries.json`),
    and her offers missed in a row (the automatic pause counts them across nodes). Her row is also
    what a claim locks (FOR UPDATE SKIP LOCKED), so two nodes never decide for her at once."""

    __tablename__ = "desk_secretaries"

    secretary: Mapped[str] = mapped_column(String(200), primary_key=True)
    logged_in: Mapped[bool] = mapped_column(Boolean)
    paused: Mapped[str | None] = mapped_column(String(200))   # the reason she reads; NULL: not paused
    auto_paused: Mapped[bool] = mapped_column(Boolean)
    missed: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_by: Mapped[str | None] = mapped_column(String(200))


class DeskWaiting(Base):
    """A call (or callback task) waiting in a node's line: every node reads them all, so each
    computes the one serving order over every node's calls. Void once its node's lease (that epoch)
    is gone: ignored, and deleted by whoever sees it. `tried`: the phones already rung for it in
    this round (JSON list); `offered`: its phones ring now (it keeps its place, and is not served
    twice)."""

    __tablename__ = "desk_waiting"

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64))
    node_epoch: Mapped[int] = mapped_column(Integer)
    practice: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(64))
    line: Mapped[str] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(Integer)
    enqueued_at: Mapped[float] = mapped_column(Float)   # seconds since the epoch (the serving order's key)
    seq: Mapped[int] = mapped_column(Integer)
    strategy: Mapped[str] = mapped_column(String(32))
    zone: Mapped[str] = mapped_column(String(64))       # the practice's time zone (fewest_calls' day)
    tried: Mapped[str] = mapped_column(Text)
    offered: Mapped[bool] = mapped_column(Boolean)


class DeskOffer(Base):
    """An offer of a call to a secretary: ringing, then on the call, then in wrap-up; `ended_at`
    set when she is free again. At most one active offer per secretary, whatever the node: the
    unique partial index refuses a second. Ended rows stay (her idle time and answers of the day
    come from them; purged with the call records' retention)."""

    __tablename__ = "desk_offers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    secretary: Mapped[str] = mapped_column(String(200))
    node_id: Mapped[str] = mapped_column(String(64))
    node_epoch: Mapped[int] = mapped_column(Integer)
    offered_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    answered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    outcome: Mapped[str | None] = mapped_column(String(32))
    seen: Mapped[str | None] = mapped_column(Text)  # JSON: the waiting calls its claim's check read

    __table_args__ = (
        Index("ix_desk_offers_active_secretary", "secretary", unique=True,
              postgresql_where=text("ended_at IS NULL"), sqlite_where=text("ended_at IS NULL")),
        Index("ix_desk_offers_secretary_ended_at", "secretary", "ended_at"),
    )
