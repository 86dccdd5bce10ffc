"""Retention: delete each kind of data once past its configured age, and audit the purge.

Runs daily from `PurgeService` and on demand with `callrouter db purge`. One transaction: either
everything past retention goes and the purge is audited, or nothing changes.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from sqlalchemy import delete
from sqlalchemy.orm import Session
from twisted.application.service import Service
from twisted.internet import defer, task

from callrouter.config import RetentionSettings
from callrouter.ports import Actor, Clock, RunBlocking, utc_from_clock
from callrouter.store import audit
from callrouter.store.db import Database
from callrouter.store.models import ApiToken, CallRecord, DeskOffer, Escalation, Recording, SecretaryStateChange
from callrouter.store.tasks import purge_closed
from callrouter.store.watch import purge_runs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PurgeResult:
    call_records: int
    recordings: int
    audit: int
    expired_tokens: int
    cutoffs: dict[str, str | None]
    callback_tasks: int = 0  # closed ones (they hold patients' numbers), kept as long as call records
    escalations: int = 0  # ended chains and their steps (callback numbers, notes), likewise
    state_history: int = 0  # secretaries' state changes
    media: dict[str, Any] = field(default_factory=dict)  # call recordings, their notes, voicemail messages
    watch_runs: int = 0  # the forwarding watch's ended runs (their attempts and alerts go with them)
    desk_offers: int = 0  # the shared desk's ended offers (several nodes), kept as long as call records

    def to_json(self) -> dict:
        return {"call_records": self.call_records, "recordings": self.recordings,
                "audit": self.audit, "expired_tokens": self.expired_tokens,
                "callback_tasks": self.callback_tasks, "escalations": self.escalations,
                "state_history": self.state_history, "watch_runs": self.watch_runs,
                "desk_offers": self.desk_offers, "cutoffs": self.cutoffs,
                **self.media}


class MediaPurge(Protocol):
    """Rows whose audio files go with them (callrouter.recording.vault.MediaRetention): deleted
    in the purge's transaction, counted in its audit entry; `purge` gives back what to do once the
    transaction committed (remove the files), so a failed purge removes no file."""

    def purge(self, session: Session, now: dt.datetime) -> tuple[dict[str, Any], Callable[[], None]]: ...


def _cutoff(now: dt.datetime, days: int | None) -> dt.datetime | None:
    return None if days is None else now - dt.timedelta(days=days)


class RetentionPurger:
    def __init__(self, db: Database, settings: RetentionSettings, media: Sequence[MediaPurge] = ()) -> None:
        self._db = db
        self._settings = settings
        self._media = tuple(media)

    def follow(self, settings: RetentionSettings) -> None:
        """New days to keep (a settings reload): the next purge uses them."""
        self._settings = settings

    def purge(self, actor: Actor, now: dt.datetime) -> PurgeResult:
        s_ = self._settings
        calls_cut = _cutoff(now, s_.call_records_days)
        rec_cut = _cutoff(now, s_.recordings_days)
        audit_cut = _cutoff(now, s_.audit_days)
        history_cut = _cutoff(now, s_.state_history_days)
        watch_cut = _cutoff(now, s_.watch_days)
        with self._db.transaction() as s:
            calls = recs = audited = tasks = chains = history = offers = 0
            if calls_cut is not None:
                tasks = purge_closed(s, calls_cut)
                # Steps and outbox rows go with their chain (ON DELETE CASCADE); running ones stay.
                chains = s.execute(delete(Escalation).where(Escalation.ended_at < calls_cut)).rowcount
                # Only closed records: an open one is closed by close_orphans first.
                # Legs and IVR answers go with them (ON DELETE CASCADE).
                calls = s.execute(delete(CallRecord)
                                  .where(CallRecord.ended_at < calls_cut)).rowcount
                offers = s.execute(delete(DeskOffer).where(DeskOffer.ended_at < calls_cut)).rowcount
            if rec_cut is not None:
                recs = s.execute(delete(Recording).where(Recording.created_at < rec_cut)).rowcount
            if audit_cut is not None:
                audited = audit.purge_before(s, audit_cut)
            if history_cut is not None:
                history = s.execute(delete(SecretaryStateChange)
                                    .where(SecretaryStateChange.at < history_cut)).rowcount
            watch_runs = purge_runs(s, watch_cut) if watch_cut is not None else 0
            tokens = s.execute(delete(ApiToken).where(ApiToken.expires_at <= now)).rowcount
            media: dict[str, Any] = {}
            after: list[Callable[[], None]] = []
            for step in self._media:
                counts, then = step.purge(s, now)
                media.update(counts)
                after.append(then)
            result = PurgeResult(calls, recs, audited, tokens, {
                "call_records": _iso(calls_cut), "recordings": _iso(rec_cut),
                "audit": _iso(audit_cut), "state_history": _iso(history_cut), "watch": _iso(watch_cut)},
                tasks, chains, history, media, watch_runs, offers)
            audit.append(s, actor, "retention.purge", "store", now, details=result.to_json())
        for then in after:  # the rows are gone: now their files
            then()
        logger.info("retention purge: %s call records, %s recordings, %s audit entries, %s callback tasks",
                    calls, recs, audited, tasks)
        return result


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class PurgeService(Service):
    """Runs the purge every `interval` seconds (first run at start), off the reactor thread.

    `run_blocking(f, *args)` returns a Deferred; in the daemon it is deferToThreadPool, in tests a
    synchronous `defer.maybeDeferred`.
    """

    name = "retention-purge"

    def __init__(self, purger: RetentionPurger, clock: Clock, interval: float,
                 run_blocking: RunBlocking) -> None:
        self._purger = purger
        self._clock = clock
        self._interval = interval
        self._run_blocking = run_blocking
        self._loop: task.LoopingCall | None = None
        self.last_result: PurgeResult | None = None

    def startService(self) -> None:
        super().startService()
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = self._clock
        self._loop.start(self._interval, now=True)

    def stopService(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return super().stopService()

    def follow(self, interval: float) -> None:
        """A settings reload: the purge runs every `interval` seconds from now (a purge under way
        finishes; the old loop schedules nothing more)."""
        if interval == self._interval:
            return
        self._interval = interval
        if self._loop is not None and self._loop.running:
            self._loop.stop()
            self._loop = task.LoopingCall(self._tick)
            self._loop.clock = self._clock
            self._loop.start(interval, now=False)

    def _tick(self) -> defer.Deferred:
        d = self._run_blocking(self._purger.purge, audit.SYSTEM, utc_from_clock(self._clock))
        d.addCallback(self._done)
        d.addErrback(self._failed)
        return d

    def _done(self, result: PurgeResult) -> None:
        self.last_result = result

    @staticmethod
    def _failed(failure) -> None:
        # Keep the loop alive: the next run retries.
        logger.error("retention purge failed: %s", failure.getErrorMessage())
