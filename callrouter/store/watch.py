"""The forwarding watch in the store (callrouter.watch runs it): runs, their attempts, and the
outbox of the alerts a failure sends.

- `start_run` inserts the run under its slot's unique key: a slot claimed by another node, or by
  this one before a restart, is not run again. In the same transaction it refuses a run over the
  practice's daily budget (each run reserves its attempt and its retry) or on a number already
  under way on any node.
- `finish` stores the verdict and, for a failure, the alerts to send in the same transaction:
  one row per (run, channel, contact), unique, so a failure alerts each contact once.
- Alerts are claimed (`pending` or `failed` -> `sending`) under a guarded update before they are
  sent, then marked `sent` or `failed`; a failed one is taken again a few times. `interrupted`, at
  start-up: this node's runs left `calling` are closed as interrupted (no verdict: nothing was
  learnt), its alerts left `sending` become `unknown` and are never sent again by themselves.
- `acknowledge` takes a failure off the wallboards, audited with who did it.
- Several nodes: one run `calling` per number is a unique index (whichever node inserts second is
  refused); with `claims` (the watch lead's fenced database) a run and its retry are inserted only
  by the node leading the watch. Any node's edge may get the call back: `record_return` writes it
  on the attempt waiting for it, which the placing node reads with `returns`.
- `purge_runs`: the retention purge's step for the watch.

Blocking, one transaction per call: run from a thread pool. `on_change(run)` is called with the
run after each change of it is committed (the daemon publishes it).
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, Iterable

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callrouter.domain.watch import may_start, number_key
from callrouter.domain.watch_views import (
    CALLING, FAILED, INTERRUPTED, PENDING, SEND_FAILED, SENDING, SENT, UNKNOWN, AlertView, AttemptView, RunView,
    UnknownRun, WatchRefused,
)
from callrouter.ports import Actor
from callrouter.store import audit
from callrouter.store.db import Database
from callrouter.store.models import WatchAlert, WatchAttempt, WatchRun

MAX_ALERT_ATTEMPTS = 3
IN_FLIGHT_LIMIT = dt.timedelta(minutes=30)  # a run `calling` longer than this is not under way any more
BUSY_NUMBER = "un appel de test de ce numéro est déjà en cours"


class WatchRepository:
    def __init__(self, db: Database, node: str = "local",
                 on_change: Callable[[RunView], None] | None = None, claims: Database | None = None) -> None:
        """`claims`: where runs and retries are inserted (the watch lead's fenced database on a
        node of several: refused once this node does not lead); `db` by default."""
        self._db, self._node = db, node
        self._claims = claims or db
        self._on_change = on_change or (lambda view: None)

    # --- runs ------------------------------------------------------------------------------------

    def start_run(self, slot_key: str, practice: str, number: str, returns_on: str, caller: str, token: str,
                  trigger: str, planned_at: dt.datetime, now: dt.datetime, day: tuple[dt.datetime, dt.datetime],
                  cap: int) -> RunView | None:
        """The new run, `calling`, with its first attempt; None when its slot was claimed already.
        WatchRefused when the day's budget is spent or the number is under way."""
        try:
            with self._claims.transaction() as s:
                if s.scalar(select(WatchRun.id).where(WatchRun.slot_key == slot_key)) is not None:
                    return None
                runs_today = s.scalar(select(func.count(WatchRun.id)).where(
                    WatchRun.practice == practice, WatchRun.started_at >= day[0], WatchRun.started_at < day[1]))
                if not may_start(runs_today or 0, cap):
                    raise WatchRefused(f"le nombre d'appels de test du jour est atteint pour ce cabinet ({cap})")
                # A run left calling too long (its node stopped for good) is not under way any more.
                s.execute(update(WatchRun).where(WatchRun.number == number, WatchRun.state == CALLING,
                                                 WatchRun.started_at <= now - IN_FLIGHT_LIMIT)
                          .values(state=INTERRUPTED, ended_at=now))
                if s.scalar(select(WatchRun.id).where(WatchRun.number == number, WatchRun.state == CALLING)) is not None:
                    raise WatchRefused(BUSY_NUMBER)
                run = WatchRun(slot_key=slot_key[:200], practice=practice, number=number, returns_on=returns_on,
                               caller=caller, token=token, trigger=trigger[:64], node=self._node, state=CALLING,
                               planned_at=planned_at, started_at=now)
                s.add(run)
                s.flush()
                s.add(WatchAttempt(run_id=run.id, n=1, started_at=now, rang=False))
                s.flush()
                view = _view(s, run)
        except IntegrityError:
            # Another node inserted this slot, or a run of this number, between our checks and our insert.
            with self._db.transaction() as s:
                if s.scalar(select(WatchRun.id).where(WatchRun.slot_key == slot_key[:200])) is not None:
                    return None
            raise WatchRefused(BUSY_NUMBER) from None
        self._on_change(view)
        return view

    def add_attempt(self, run_id: int, n: int, now: dt.datetime) -> None:
        with self._claims.transaction() as s:
            s.add(WatchAttempt(run_id=run_id, n=n, started_at=now, rang=False))

    def end_attempt(self, run_id: int, n: int, outcome: str, now: dt.datetime, sip_code: int | None = None,
                    rang: bool = False, rtt_ms: int | None = None, name_kept: bool | None = None) -> None:
        with self._db.transaction() as s:
            s.execute(update(WatchAttempt).where(WatchAttempt.run_id == run_id, WatchAttempt.n == n)
                      .values(outcome=outcome, ended_at=now, sip_code=sip_code, rang=rang, rtt_ms=rtt_ms,
                              name_kept=name_kept))

    def finish(self, run_id: int, state: str, outcome: str, now: dt.datetime, rtt_ms: int | None = None,
               alerts: Iterable[tuple[str, str]] = ()) -> RunView:
        """The verdict, and for a failure the alerts to send (channel, destination), stored at once."""
        with self._db.transaction() as s:
            run = _get(s, run_id)
            if run.state == CALLING:
                run.state, run.outcome, run.rtt_ms, run.ended_at = state, outcome, rtt_ms, now
                for channel, destination in dict.fromkeys(alerts) if state == FAILED else ():
                    s.add(WatchAlert(run_id=run_id, channel=channel, destination=destination[:200], state=PENDING,
                                     attempts=0, created_at=now))
            s.flush()
            view = _view(s, run)
        self._on_change(view)
        return view

    def acknowledge(self, actor: Actor, run_id: int, now: dt.datetime) -> RunView:
        """A failure taken in hand: off the wallboards (audited). Acknowledging twice changes nothing."""
        with self._db.transaction() as s:
            run = _get(s, run_id)
            if run.state != FAILED:
                raise WatchRefused("seul un test en échec peut être pris en compte")
            changed = run.acknowledged_at is None
            if changed:
                run.acknowledged_at, run.acknowledged_by = now, actor.name[:64]
                audit.append(s, actor, "watch.acknowledge", f"watch:{run_id}", now,
                             details={"practice": run.practice, "outcome": run.outcome})
            view = _view(s, run)
        if changed:
            self._on_change(view)
        return view

    def interrupted(self, now: dt.datetime) -> tuple[int, int]:
        """At start-up: (runs this node left calling, now interrupted; alerts it left sending, now unknown)."""
        with self._db.transaction() as s:
            runs = s.execute(update(WatchRun).where(WatchRun.state == CALLING, WatchRun.node == self._node)
                             .values(state=INTERRUPTED, ended_at=now)).rowcount
            alerts = s.execute(update(WatchAlert).where(WatchAlert.state == SENDING, WatchAlert.node == self._node)
                               .values(state=UNKNOWN, error="interrupted by a restart; not sent again")).rowcount
        return runs, alerts

    # --- the call back, seen by another node -------------------------------------------------------

    def record_return(self, caller: str, number: str, caller_name: str, now: dt.datetime) -> int | None:
        """A call back from `caller` (of the watch range) on `number`, named `caller_name`, reached
        this node: written on the attempt of the run under way waiting for exactly that pair,
        whichever node placed it. Its run's id, or None when no attempt waits for it (late)."""
        caller, number = number_key(caller), number_key(number)
        with self._db.transaction() as s:
            for run in s.scalars(select(WatchRun).where(WatchRun.state == CALLING,
                                                        WatchRun.started_at > now - IN_FLIGHT_LIMIT)):
                if (number_key(run.caller), number_key(run.returns_on)) != (caller, number):
                    continue
                done = s.execute(update(WatchAttempt).where(
                    WatchAttempt.run_id == run.id, WatchAttempt.ended_at.is_(None), WatchAttempt.returned_at.is_(None))
                    .values(returned_at=now, returned_node=self._node[:64],
                            name_kept=bool(run.token) and run.token in (caller_name or "")))
                return run.id if done.rowcount else None
        return None

    def returns(self, run_ids: Iterable[int]) -> list[tuple[int, int, dt.datetime, bool | None]]:
        """(run, attempt, when, name kept) of the calls back other nodes wrote for these runs' open attempts."""
        ids = list(run_ids)
        if not ids:
            return []
        with self._db.transaction() as s:
            rows = s.execute(select(WatchAttempt.run_id, WatchAttempt.n, WatchAttempt.returned_at,
                                    WatchAttempt.name_kept)
                             .where(WatchAttempt.run_id.in_(ids), WatchAttempt.returned_at.is_not(None),
                                    WatchAttempt.ended_at.is_(None))).all()
            return [(r.run_id, r.n, r.returned_at, r.name_kept) for r in rows]

    # --- alerts ------------------------------------------------------------------------------------

    def pending_alerts(self) -> list[tuple[AlertView, RunView]]:
        """Alerts to send: pending, or failed with attempts left; oldest first."""
        with self._db.transaction() as s:
            rows = s.scalars(select(WatchAlert).where(or_(
                WatchAlert.state == PENDING,
                (WatchAlert.state == SEND_FAILED) & (WatchAlert.attempts < MAX_ALERT_ATTEMPTS)))
                .order_by(WatchAlert.id)).all()
            return [(_alert(a), _view(s, _get(s, a.run_id))) for a in rows]

    def claim_alert(self, alert_id: int, now: dt.datetime) -> bool:
        """The alert is this node's to send now; False when another claim won or it is done."""
        with self._db.transaction() as s:
            row = s.execute(select(WatchAlert.state, WatchAlert.attempts).where(WatchAlert.id == alert_id)).first()
            if row is None or row.state not in (PENDING, SEND_FAILED) or row.attempts >= MAX_ALERT_ATTEMPTS:
                return False
            done = s.execute(update(WatchAlert).where(
                WatchAlert.id == alert_id, WatchAlert.state == row.state, WatchAlert.attempts == row.attempts)
                .values(state=SENDING, attempts=row.attempts + 1, node=self._node, claimed_at=now))
            return done.rowcount > 0

    def alert_sent(self, alert_id: int, provider_id: str | None, now: dt.datetime) -> None:
        self._alert_done(alert_id, state=SENT, provider_id=(provider_id or "")[:200] or None, sent_at=now, error=None)

    def alert_failed(self, alert_id: int, error: str) -> None:
        self._alert_done(alert_id, state=SEND_FAILED, error=error[:500])

    def _alert_done(self, alert_id: int, **values) -> None:
        with self._db.transaction() as s:
            s.execute(update(WatchAlert).where(WatchAlert.id == alert_id, WatchAlert.state == SENDING)
                      .values(**values))

    # --- reading ---------------------------------------------------------------------------------

    def get(self, run_id: int) -> RunView:
        with self._db.transaction() as s:
            return _view(s, _get(s, run_id))

    def runs(self, practices: Iterable[str] | None = None, limit: int = 50,
             since: dt.datetime | None = None) -> list[RunView]:
        """Runs newest first; `practices` None: every practice."""
        with self._db.transaction() as s:
            stmt = select(WatchRun)
            if practices is not None:
                stmt = stmt.where(WatchRun.practice.in_(list(practices)))
            if since is not None:
                stmt = stmt.where(WatchRun.started_at >= since)
            stmt = stmt.order_by(WatchRun.started_at.desc(), WatchRun.id.desc()).limit(limit)
            return [_view(s, r) for r in s.scalars(stmt)]

    def latest(self, practices: Iterable[str] | None = None) -> list[RunView]:
        """Each (practice, number)'s last run with a verdict."""
        with self._db.transaction() as s:
            last = (select(func.max(WatchRun.id).label("id")).where(WatchRun.state.in_(("passed", FAILED)))
                    .group_by(WatchRun.practice, WatchRun.number))
            if practices is not None:
                last = last.where(WatchRun.practice.in_(list(practices)))
            rows = s.scalars(select(WatchRun).where(WatchRun.id.in_(last))
                             .order_by(WatchRun.practice, WatchRun.number))
            return [_view(s, r) for r in rows]

    def alarms(self, practices: Iterable[str] | None = None) -> list[RunView]:
        """Failed runs nobody acknowledged yet, newest first."""
        with self._db.transaction() as s:
            stmt = select(WatchRun).where(WatchRun.state == FAILED, WatchRun.acknowledged_at.is_(None))
            if practices is not None:
                stmt = stmt.where(WatchRun.practice.in_(list(practices)))
            return [_view(s, r) for r in s.scalars(stmt.order_by(WatchRun.id.desc()).limit(200))]


def purge_runs(s: Session, cutoff: dt.datetime) -> int:
    """Inside the retention purge's transaction: runs ended before `cutoff`, with their attempts
    and alerts (ON DELETE CASCADE). Kept whatever their age: runs under way, and failures nobody
    acknowledged yet (they stay red on the wallboards until someone does)."""
    return s.execute(delete(WatchRun).where(
        WatchRun.state != CALLING, WatchRun.ended_at.is_not(None), WatchRun.ended_at < cutoff,
        or_(WatchRun.state != FAILED, WatchRun.acknowledged_at.is_not(None)))).rowcount


def _get(s: Session, run_id: int) -> WatchRun:
    run = s.get(WatchRun, run_id)
    if run is None:
        raise UnknownRun(f"no watch run {run_id}")
    return run


def _alert(a: WatchAlert) -> AlertView:
    return AlertView(a.id, a.run_id, a.channel, a.destination, a.state, a.attempts, a.sent_at, a.error)


def _view(s: Session, r: WatchRun) -> RunView:
    attempts = tuple(AttemptView(a.n, a.started_at, a.ended_at, a.outcome, a.sip_code, a.rang, a.rtt_ms, a.name_kept)
                     for a in s.scalars(select(WatchAttempt).where(WatchAttempt.run_id == r.id)
                                        .order_by(WatchAttempt.n)))
    alerts = tuple(_alert(a) for a in s.scalars(select(WatchAlert).where(WatchAlert.run_id == r.id)
                                                .order_by(WatchAlert.id)))
    return RunView(r.id, r.slot_key, r.practice, r.number, r.returns_on, r.caller, r.token, r.trigger, r.node,
                   r.state, r.outcome, r.rtt_ms, r.planned_at, r.started_at, r.ended_at, r.acknowledged_at,
                   r.acknowledged_by, attempts, alerts)


__all__ = ["WatchRepository", "purge_runs", "MAX_ALERT_ATTEMPTS", "SENT", "UnknownRun", "WatchRefused"]
