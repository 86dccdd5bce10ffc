"""The node leases and the leads: rows the nodes sharing a PostgreSQL coordinate through.
Re-exported by callrouter.store.models, whose metadata they share (see callrouter.store.leases).
On SQLite the tables exist but stay empty: the one node holds its lease without them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callrouter.store.base import Base, UtcDateTime


class NodeLeaseRecord(Base):
    """One row per node name. `epoch` goes up each time a process acquires the lease, so a newer
    process of the same node fences out an older one; `expires_at` is on the database's clock."""

    __tablename__ = "node_leases"

    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    acquired_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    renewed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    host: Mapped[str] = mapped_column(String(255))   # where the holding process runs, for people
    pid: Mapped[int] = mapped_column(Integer)


class LeadRecord(Base):
    """One row per role led by one node at a time (`escalation`): the node and the epoch of its
    lease; `term` goes up at each change of hands. No node (NULL): given up."""

    __tablename__ = "cluster_leads"

    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    node_id: Mapped[str | None] = mapped_column(String(64))
    node_epoch: Mapped[int | None] = mapped_column(Integer)
    term: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
