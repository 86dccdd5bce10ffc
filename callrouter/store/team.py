"""The team in the database: coverage, skill levels, pause reasons, and the secretaries' state
history.

Every change is one transaction that bumps the team's version (the single `team_version` row,
updated first, so concurrent editors, threads or nodes, are serialised on it) and appends its
audit entry with what was before and after. Keys and levels are checked by the caller against the
dialplans in force (callrouter.domain.team); the store keeps what it is given.

Saving a secretary also sets her user's practices (her API scope, `user_practices`) to the
practices her coverage reaches, computed by the caller, in the same transaction and audited as
`user.practices`; removing her empties them. A member whose name is no user (a fixed phone's URI,
or a username the settings gave before the user existed) has no scope to set.

State history rows are appended in batches by the controller's writer and read newest first; the
retention purge deletes them after `retention.state_history_days`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callrouter.domain.team import StateChange, Team, UnknownMember
from callrouter.ports import Actor
from callrouter.store.audit import append
from callrouter.store.db import Database
from callrouter.store.models import (
    PauseReason, SecretaryStateChange, TeamCoverage, TeamLevel, TeamSecretary, TeamVersion, User, UserPractice,
)

VERSION_ROW = 1


class TeamRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- reads ---------------------------------------------------------------------------------

    def load(self) -> Team | None:
        """The team at its current version; None while it was never seeded nor edited."""
        with self._db.transaction() as s:
            if s.get(TeamVersion, VERSION_ROW) is None:
                return None
            return _team(s)

    def pause_reasons(self) -> tuple[str, ...]:
        with self._db.transaction() as s:
            return _reasons(s)

    def history(self, secretary: str | None = None, since: dt.datetime | None = None,
                limit: int = 100) -> list[StateChange]:
        """State changes, newest first."""
        stmt = select(SecretaryStateChange)
        if secretary is not None:
            stmt = stmt.where(SecretaryStateChange.secretary == secretary)
        if since is not None:
            stmt = stmt.where(SecretaryStateChange.at >= since)
        stmt = stmt.order_by(SecretaryStateChange.at.desc(), SecretaryStateChange.id.desc()).limit(limit)
        with self._db.transaction() as s:
            return [StateChange(r.at, r.secretary, r.state, r.reason, r.by) for r in s.scalars(stmt)]

    # --- changes (audited) ---------------------------------------------------------------------

    def seed(self, team: Team, actor: Actor, now: dt.datetime) -> Team | None:
        """Import `team` (the settings' one) into an empty team; None, changing nothing, when the
        team was seeded or edited before (by this node or another)."""
        try:
            with self._db.transaction() as s:
                if s.get(TeamVersion, VERSION_ROW) is not None:
                    return None
                s.add(TeamVersion(id=VERSION_ROW, version=1, seeded_at=now, changed_at=now))
                s.flush()  # a concurrent seeder fails here, on the primary key
                for who in team.secretaries:
                    s.add(TeamSecretary(id=who, added_at=now))
                s.flush()
                for key, members in team.coverage.items():
                    for position, who in enumerate(members):
                        s.add(TeamCoverage(secretary=who, key=key, position=position))
                for who, levels in team.levels.items():
                    for practice, level in levels.items():
                        s.add(TeamLevel(secretary=who, practice=practice, level=level))
                for position, reason in enumerate(team.pause_reasons):
                    s.add(PauseReason(position=position, reason=reason))
                s.flush()
                seeded = _team(s)
                append(s, actor, "team.seed", "team", now, after=_audit_team(seeded))
                return seeded
        except IntegrityError:
            return None

    def set_secretary(self, actor: Actor, who: str, keys: Sequence[str], levels: dict[str, int],
                      now: dt.datetime, practices: Sequence[str] = ()) -> Team:
        """She covers exactly `keys` with `levels` (created if new); in a key she already covered
        she keeps her place, in a new one she comes last. Her user, if she is one, gets exactly
        `practices`."""
        with self._db.transaction() as s:
            _bump(s, now)
            before = _member(s, who)
            if before is None:
                s.add(TeamSecretary(id=who, added_at=now))
                s.flush()
            placed = {c.key: c for c in s.scalars(select(TeamCoverage).where(TeamCoverage.secretary == who))}
            for key, row in placed.items():
                if key not in keys:
                    s.delete(row)
            for key in sorted(set(keys) - set(placed)):
                last = s.scalar(select(func.max(TeamCoverage.position)).where(TeamCoverage.key == key))
                s.add(TeamCoverage(secretary=who, key=key, position=0 if last is None else last + 1))
            s.execute(delete(TeamLevel).where(TeamLevel.secretary == who))
            for practice, level in sorted(levels.items()):
                s.add(TeamLevel(secretary=who, practice=practice, level=level))
            s.flush()
            after = _member(s, who)
            append(s, actor, "team.secretary.set", f"secretary:{who}", now, before=before, after=after)
            _set_practices(s, actor, who, practices, now)
            return _team(s)

    def remove_secretary(self, actor: Actor, who: str, now: dt.datetime) -> Team:
        """She leaves the team (her coverage and levels go with her); her user keeps no practice."""
        with self._db.transaction() as s:
            before = _member(s, who)
            if before is None:
                raise UnknownMember(who)
            _bump(s, now)
            s.execute(delete(TeamCoverage).where(TeamCoverage.secretary == who))
            s.execute(delete(TeamLevel).where(TeamLevel.secretary == who))
            s.execute(delete(TeamSecretary).where(TeamSecretary.id == who))
            s.flush()
            append(s, actor, "team.secretary.remove", f"secretary:{who}", now, before=before)
            _set_practices(s, actor, who, (), now)
            return _team(s)

    def set_pause_reasons(self, actor: Actor, reasons: Sequence[str], now: dt.datetime) -> Team:
        with self._db.transaction() as s:
            _bump(s, now)
            before = list(_reasons(s))
            s.execute(delete(PauseReason))
            s.flush()
            for position, reason in enumerate(reasons):
                s.add(PauseReason(position=position, reason=reason))
            s.flush()
            append(s, actor, "team.pause_reasons.set", "team", now, before={"pause_reasons": before},
                   after={"pause_reasons": list(reasons)})
            return _team(s)

    # --- state history -------------------------------------------------------------------------

    def append_states(self, changes: Sequence[StateChange]) -> None:
        """Append state changes (values too long for their column are cut)."""
        with self._db.transaction() as s:
            s.add_all(SecretaryStateChange(at=c.at, secretary=c.secretary[:200], state=c.state[:16],
                                           reason=None if c.reason is None else c.reason[:80], by=c.by[:64])
                      for c in changes)


def _bump(s: Session, now: dt.datetime) -> None:
    """The next version, taking the version row's lock first (created when never seeded)."""
    done = s.execute(update(TeamVersion).where(TeamVersion.id == VERSION_ROW)
                     .values(version=TeamVersion.version + 1, changed_at=now)).rowcount
    if not done:
        s.add(TeamVersion(id=VERSION_ROW, version=1, seeded_at=now, changed_at=now))
        s.flush()


def _team(s: Session) -> Team:
    version = s.execute(select(TeamVersion).where(TeamVersion.id == VERSION_ROW)
                        .execution_options(populate_existing=True)).scalar_one()
    coverage: dict[str, tuple[str, ...]] = {}
    for row in s.scalars(select(TeamCoverage).order_by(TeamCoverage.key, TeamCoverage.position,
                                                       TeamCoverage.secretary)):
        coverage[row.key] = coverage.get(row.key, ()) + (row.secretary,)
    levels: dict[str, dict[str, int]] = {}
    for row in s.scalars(select(TeamLevel).order_by(TeamLevel.secretary, TeamLevel.practice)):
        levels.setdefault(row.secretary, {})[row.practice] = row.level
    members = tuple(sorted(s.scalars(select(TeamSecretary.id))))  # Python's order, whatever the collation
    return Team(members, coverage, levels, _reasons(s), version.version, version.changed_at)


def _reasons(s: Session) -> tuple[str, ...]:
    return tuple(s.scalars(select(PauseReason.reason).order_by(PauseReason.position)))


def _member(s: Session, who: str) -> dict[str, Any] | None:
    """What the audit keeps of a member: her keys and levels."""
    if s.get(TeamSecretary, who) is None:
        return None
    keys = sorted(s.scalars(select(TeamCoverage.key).where(TeamCoverage.secretary == who)))
    levels = {r.practice: r.level for r in s.scalars(select(TeamLevel).where(TeamLevel.secretary == who))}
    return {"coverage": keys, "levels": dict(sorted(levels.items()))}


def _audit_team(team: Team) -> dict[str, Any]:
    return {"secretaries": {who: {"coverage": list(team.keys_of(who)), "levels": team.levels_of(who)}
                            for who in team.secretaries},
            "pause_reasons": list(team.pause_reasons)}


def _set_practices(s: Session, actor: Actor, who: str, practices: Sequence[str], now: dt.datetime) -> None:
    user = s.scalar(select(User).where(User.username == who))
    if user is None:
        return
    before = sorted(p.practice for p in user.practices)
    after = sorted(set(practices))
    if before == after:
        return
    user.practices = [UserPractice(practice=p) for p in after]
    s.flush()
    append(s, actor, "user.practices", f"user:{who}", now, before={"practices": before},
           after={"practices": after}, details={"from": "team coverage"})
