"""The forwarding watch's tables: each run (a planned or asked-for test of one number), its
attempts, and the outbox of the alerts a failure sends. Re-exported by callrouter.store.models,
whose metadata they share (see callrouter.store.watch)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from callrouter.store.base import Base, UtcDateTime


class WatchRun(Base):
    """One test of a practice's number: `slot_key` (unique) is its planned slot, so a slot runs
    once whatever the nodes and restarts. `state`: calling, then passed or failed; interrupted when
    the node stopped during it. A failed run stays red on the wallboards until acknowledged."""

    __tablename__ = "watch_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slot_key: Mapped[str] = mapped_column(String(200))
    practice: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(32))       # the practice's number called
    returns_on: Mapped[str] = mapped_column(String(32))   # the number the call comes back on
    caller: Mapped[str] = mapped_column(String(32))       # the secretariat's number it presents
    token: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(64))      # "schedule", or who asked for it
    node: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16))
    rtt_ms: Mapped[int | None] = mapped_column(Integer)
    planned_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("slot_key"),
        Index("ix_watch_runs_practice_started_at", "practice", "started_at"),
        Index("ix_watch_runs_state", "state"),
        # One run under way per number, whichever node runs it (migration 0016).
        Index("uq_watch_runs_number_calling", "number", unique=True,
              sqlite_where=text("state = 'calling'"), postgresql_where=text("state = 'calling'")),
    )


class WatchAttempt(Base):
    """One watch call of a run (the first, and its retry). `returned_at`: when its call came back
    at a node other than the one that placed it (any node's edge may get it)."""

    __tablename__ = "watch_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("watch_runs.id", ondelete="CASCADE"), index=True)
    n: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    outcome: Mapped[str | None] = mapped_column(String(16))
    sip_code: Mapped[int | None] = mapped_column(Integer)
    rang: Mapped[bool] = mapped_column(Boolean, default=False)
    rtt_ms: Mapped[int | None] = mapped_column(Integer)
    name_kept: Mapped[bool | None] = mapped_column(Boolean)  # the display-name token came back too
    # The call back as another node's edge saw it (the placing node reads it from here).
    returned_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    returned_node: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("run_id", "n"),)


class WatchAlert(Base):
    """One alert of a failed run to one contact, inserted with the run's verdict: `pending`, then
    claimed (`sending`) before it is sent, `sent` or `failed` (retried a few times); `unknown` when
    a stop cut the send short (never sent again)."""

    __tablename__ = "watch_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("watch_runs.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))        # sms | email
    destination: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    node: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    provider_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        UniqueConstraint("run_id", "channel", "destination"),
        Index("ix_watch_alerts_state", "state"),
    )
