"""SQLAlchemy 2 models: calls and their legs, users and their rights, the audit trail.

The migrations in `callrouter/store/migrations/versions` must describe exactly these tables; a test
compares them (alembic autogenerate) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callrouter.store.base import NAMING, Base, UtcDateTime  # noqa: F401 (re-exported)


class CallRecord(Base):
    """One record per call, created at arrival; `ended_at` NULL means still open (or orphaned)."""

    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    practice: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(32))
    # Stored for the practice's callbacks; never logged unmasked.
    caller: Mapped[str | None] = mapped_column(String(32))
    # The controller node and media worker holding the call: crash sweeps close only their own.
    node: Mapped[str] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(64))
    # The worker's leg of the caller: a controller started again re-adopts the call from it.
    caller_leg: Mapped[str | None] = mapped_column(String(64), index=True)
    arrived_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    ivr_answered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    routed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    route: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(200))
    # The rules that routed the call (content hash of the dialplan) and the decision's reasons, one
    # line each, newest decision: a call can be explained later by the exact rules in force.
    dialplan_version: Mapped[str | None] = mapped_column(String(64))
    why: Mapped[str | None] = mapped_column(Text)
    queue: Mapped[str | None] = mapped_column(String(64))
    queued_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    offered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    answered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    secretary: Mapped[str | None] = mapped_column(String(64))
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    queue_wait_seconds: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String(32))
    cause: Mapped[str | None] = mapped_column(String(200))

    legs: Mapped[list["CallLeg"]] = relationship(
        back_populates="call", cascade="all, delete-orphan", passive_deletes=True,
        order_by="CallLeg.id")
    ivr_answers: Mapped[list["IvrAnswer"]] = relationship(
        back_populates="call", cascade="all, delete-orphan", passive_deletes=True,
        order_by="IvrAnswer.id")

    __table_args__ = (
        Index("ix_calls_practice_arrived_at", "practice", "arrived_at"),
        Index("ix_calls_arrived_at", "arrived_at"),
        Index("ix_calls_ended_at", "ended_at"),
        Index("ix_calls_node_ended_at", "node", "ended_at"),
    )


class CallLeg(Base):
    __tablename__ = "call_legs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    party: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    end_cause: Mapped[str | None] = mapped_column(String(200))

    call: Mapped[CallRecord] = relationship(back_populates="legs")


class IvrAnswer(Base):
    __tablename__ = "ivr_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    menu: Mapped[str] = mapped_column(String(64))
    digit: Mapped[str] = mapped_column(String(8))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    call: Mapped[CallRecord] = relationship(back_populates="ivr_answers")


class Recording(Base):
    """Metadata of a call recording (the audio lives elsewhere); kept for its own retention."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    location: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)


class User(Base):
    """A console/API user. See callrouter.store.users for the SIP credential choice."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[str] = mapped_column(String(255))  # sealed: callrouter.store.totp_secrets
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    sip_ha1: Mapped[str | None] = mapped_column(String(64))
    sip_ha1b: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    grants: Mapped[list["Grant"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="Grant.id")
    practices: Mapped[list["UserPractice"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="UserPractice.practice")


class Grant(Base):
    """A permission given on top of the role's defaults."""

    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    module: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        UniqueConstraint("user_id", "module", "action", name="uq_grants_user_module_action"),
    )


class UserPractice(Base):
    """The practices a secretary covers, or the practice a practitioner belongs to."""

    __tablename__ = "user_practices"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    practice: Mapped[str] = mapped_column(String(64), primary_key=True)


class ApiToken(Base):
    """A bearer token, stored as its SHA-256 (the token itself is only shown once, at login)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    source: Mapped[str | None] = mapped_column(String(64))


class AuditEntry(Base):
    """One append-only audit entry, chained: hash = sha256(prev_hash + canonical content)."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row serialising appends and anchoring the chain.

    `last_seq`/`last_hash` are the newest entry (so a deleted tail is detected); `anchor_seq`/
    `anchor_hash` are the newest *purged* entry, from which verification starts after a purge.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    anchor_seq: Mapped[int] = mapped_column(Integer)
    anchor_hash: Mapped[str] = mapped_column(String(64))
    # HMAC of anchor and head with the audit key file (callrouter.store.audit_anchor)
    head_mac: Mapped[str | None] = mapped_column(String(64))


class Escalation(Base):
    """One escalation chain started for an urgent call; `state` is active until an outcome.

    `caller` is kept for the practitioner's callback and never logged unmasked.
    """

    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str | None] = mapped_column(String(64), index=True)
    practice: Mapped[str] = mapped_column(String(64))
    tier: Mapped[str] = mapped_column(String(64))
    caller: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(16))  # active | done
    outcome: Mapped[str | None] = mapped_column(String(32))  # acknowledged | exhausted | cancelled
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledged_via: Mapped[str | None] = mapped_column(String(32))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    dialplan_version: Mapped[str | None] = mapped_column(String(64))
    # Started from the console rather than the IVR: who did it ("user:<name>") and her short note.
    triggered_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(500))
    # An exhausted chain demands a supervisor's attention until one takes it in hand (wallboard).
    taken_by: Mapped[str | None] = mapped_column(String(64))
    taken_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    steps: Mapped[list["EscalationStepRecord"]] = relationship(
        back_populates="escalation", cascade="all, delete-orphan", passive_deletes=True,
        order_by="EscalationStepRecord.id")
    replies: Mapped[list["EscalationReply"]] = relationship(
        back_populates="escalation", cascade="all, delete-orphan", passive_deletes=True,
        order_by="EscalationReply.id")

    __table_args__ = (
        Index("ix_escalations_state", "state"),
        Index("ix_escalations_practice_started_at", "practice", "started_at"),
    )


class EscalationStepRecord(Base):
    """The outbox: one row per (escalation, round, step), inserted before the message is sent.

    The unique key is what makes a restart safe: a step is claimed once, so it is sent at most
    once. state: pending (stored, not yet claimed: the duty contact's alerts) | sending (claimed,
    send under way) | sent | delivered | failed | skipped | unknown (a restart found it in
    `sending`: it may or may not have left). Round -1 holds the alerts to the duty contact when a
    chain is exhausted (step 0 the SMS, step 1 the e-mail). `outcome` says what happened when the
    channel knows more than "it left" (an alert call: `no_key_pressed`, `acknowledged`...).
    """

    __tablename__ = "escalation_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    practitioner: Mapped[str | None] = mapped_column(String(64))
    destination: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    # The controller node that claimed the step: a restart marks only its own sends `unknown`.
    node: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    error: Mapped[str | None] = mapped_column(String(500))
    outcome: Mapped[str | None] = mapped_column(String(32))

    escalation: Mapped[Escalation] = relationship(back_populates="steps")

    __table_args__ = (
        UniqueConstraint("escalation_id", "round", "step", name="uq_escalation_steps_key"),
        Index("ix_escalation_steps_destination", "destination"),
    )


class EscalationReply(Base):
    """A practitioner's SMS reply to a chain, and how it was read (callrouter.domain.sms_reply).

    The text itself is not kept (a reply may name a patient); `sender` is masked. `understood`:
    yes | no | unclear; `action`: acknowledged | already_closed | declined | asked_which |
    explained. A reply that concerned several chains (asked which one) is logged on each.
    """

    __tablename__ = "escalation_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    sender: Mapped[str] = mapped_column(String(32))
    practitioner: Mapped[str | None] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(16))  # webhook | smpp
    understood: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))

    escalation: Mapped[Escalation] = relationship(back_populates="replies")


class CallbackTask(Base):
    """A patient to call back: from an overflow offer, a voicemail, or a secretary.

    `id` is chosen by whoever creates the task (a uuid hex), so the controller knows it without a
    round trip and a replayed creation is a no-op. `place_at` gives the task its place in the queue
    line: the original call's enqueue time. `number` is E.164 and never logged unmasked.
    state: open | assigned | calling (an outbound call under way, `attempt_leg`) | done (the call
    `done_call_id`/`done_leg` reached the patient) | expired | cancelled.
    """

    __tablename__ = "callback_tasks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    practice: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # overflow | voicemail | secretary | node_lost
    call_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str | None] = mapped_column(String(64))
    place_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(16))
    assigned_to: Mapped[str | None] = mapped_column(String(200))  # username or SIP URI
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    attempt_leg: Mapped[str | None] = mapped_column(String(64))
    attempt_node: Mapped[str | None] = mapped_column(String(64))  # whose controller places that call
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    done_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    done_call_id: Mapped[str | None] = mapped_column(String(64))
    done_leg: Mapped[str | None] = mapped_column(String(64))
    cancelled_by: Mapped[str | None] = mapped_column(String(200))
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_callback_tasks_practice_state", "practice", "state"),
        Index("ix_callback_tasks_state_expires_at", "state", "expires_at"),
    )


# The team's and the console sessions' tables share this metadata (the migrations describe them all).
from callrouter.store.models_team import (  # noqa: E402,F401 (re-exported)
    ConsoleSession, PauseReason, SecretaryStateChange, TeamCoverage, TeamLevel, TeamSecretary, TeamVersion,
)
# So does the weekly reports' outbox.
from callrouter.store.models_reports import ReportDelivery  # noqa: E402,F401 (re-exported)
# So do the forwarding watch's runs, attempts and alerts.
from callrouter.store.models_watch import WatchAlert, WatchAttempt, WatchRun  # noqa: E402,F401 (re-exported)
# So do call recording's and voicemail's (statuses, recordings, notes, on-demand requests, messages).
from callrouter.store.models_recording import (  # noqa: E402,F401 (re-exported)
    CallRecordingFile, CallRecordingStatus, RecordingDemand, RecordingNote, VoicemailMessage,
)
# So do the node leases and the leads of several nodes.
from callrouter.store.models_cluster import LeadRecord, NodeLeaseRecord  # noqa: E402,F401 (re-exported)
# So do the shared desk's secretaries' states, waiting calls and offers (several nodes).
from callrouter.store.models_desk import DeskOffer, DeskSecretary, DeskWaiting  # noqa: E402,F401 (re-exported)
# And Kamailio's registrations table, shared by the edges of several nodes.
from callrouter.store.models_edge import KamailioLocation, KamailioVersion  # noqa: E402,F401 (re-exported)
