"""The weekly reports' outbox: one row per (practice, ISO week), inserted before the e-mail is
sent. Re-exported by callrouter.store.models, whose metadata it shares (see callrouter.store.reports)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callrouter.store.base import Base, UtcDateTime


class ReportDelivery(Base):
    """A practice's weekly report: claimed (`sending`) by the node about to send it, then `sent`
    or `failed` (the relay refused it: retried a few times), or `unknown` (the send was cut short
    where it may have reached the relay: never re-sent by itself)."""

    __tablename__ = "report_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    practice: Mapped[str] = mapped_column(String(64))
    iso_year: Mapped[int] = mapped_column(Integer)
    iso_week: Mapped[int] = mapped_column(Integer)
    recipients: Mapped[str] = mapped_column(String(1000))  # comma-separated
    state: Mapped[str] = mapped_column(String(16))
    node: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    claimed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    message_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        UniqueConstraint("practice", "iso_year", "iso_week"),
        Index("ix_report_outbox_state", "state"),
    )
