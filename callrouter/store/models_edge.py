"""Kamailio's own tables, for the edges of several nodes (docs/operations.md, "Several nodes").

`location` is usrloc's table in Kamailio 5.6's layout (its usrloc-create.sql, table version 9):
with `sip.registrations: database` every node's Kamailio writes the softphones' registrations
there (written through, db_mode 1) and reads the others'. `version` is the table Kamailio checks
its tables' layout in. Only Kamailio writes `location`; callrouter reads it
(callrouter.sip.registrations). Re-exported by callrouter.store.models, whose metadata they share;
on SQLite they exist and stay empty.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import REAL, DateTime, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from callrouter.store.base import Base

LOCATION_TABLE_VERSION = 9  # usrloc's UL_TABLE_VERSION in Kamailio 5.6


class KamailioLocation(Base):
    """One registered contact. `expires` and `last_modified` are in the writing Kamailio's local
    time (no zone), as usrloc writes them; `socket` is the edge socket that received it."""

    __tablename__ = "location"
    __table_args__ = (
        UniqueConstraint("ruid", name="location_ruid_idx"),
        Index("location_account_contact_idx", "username", "domain", "contact"),
        Index("location_expires_idx", "expires"),
        Index("location_tcpcon_idx", "connection_id"),
        Index("location_connection_idx", "server_id", "connection_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ruid: Mapped[str] = mapped_column(String(64), server_default=text("''"))
    username: Mapped[str] = mapped_column(String(64), server_default=text("''"))
    domain: Mapped[str | None] = mapped_column(String(64))
    contact: Mapped[str] = mapped_column(String(512), server_default=text("''"))
    received: Mapped[str | None] = mapped_column(String(128))
    path: Mapped[str | None] = mapped_column(String(512))
    expires: Mapped[dt.datetime] = mapped_column(DateTime(), server_default=text("'2030-05-28 21:32:15'"))
    q: Mapped[float] = mapped_column(REAL(), server_default=text("1.0"))
    callid: Mapped[str] = mapped_column(String(255), server_default=text("'Default-Call-ID'"))
    cseq: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    last_modified: Mapped[dt.datetime] = mapped_column(DateTime(), server_default=text("'2000-01-01 00:00:01'"))
    flags: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    cflags: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    user_agent: Mapped[str] = mapped_column(String(255), server_default=text("''"))
    socket: Mapped[str | None] = mapped_column(String(64))
    methods: Mapped[int | None] = mapped_column(Integer)
    instance: Mapped[str | None] = mapped_column(String(255))
    reg_id: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    server_id: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    connection_id: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    keepalive: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    partition: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class KamailioVersion(Base):
    """Kamailio's record of its tables' layouts: usrloc refuses to start unless `location` is 9."""

    __tablename__ = "version"
    __table_args__ = (UniqueConstraint("table_name", name="version_table_name_idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    table_name: Mapped[str] = mapped_column(String(32))
    table_version: Mapped[int] = mapped_column(Integer, server_default=text("0"))
