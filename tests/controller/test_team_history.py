"""The state history writer (callrouter.controller.history) against the real SQLite and PostgreSQL:
rows stored in order, kept and retried while the database is locked by someone else, a refused row
dropped alone; and the team read (or seeded once) when the service starts
(callrouter.controller.team)."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from twisted.internet import defer
from twisted.internet import task
from twisted.internet.task import Clock

from callrouter.controller.desk import Desk
from callrouter.controller.history import StateHistory
from callrouter.controller.settings import ControllerSettings
from callrouter.controller.team import TeamService
from callrouter.domain.team import StateChange, seed_team
from callrouter.store.audit import AuditLog
from callrouter.store.db import Database
from callrouter.store.team import TeamRepository
from callrouter.ports import Actor

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
EDGE = "edge:5060"


def change(n: int, **kw) -> StateChange:
    return StateChange(kw.get("at", NOW + dt.timedelta(seconds=n)), "alice", "paused", f"motif {n}", "super")


def blocking(f, *args):
    """Runs the write in the test's thread (the daemon runs it on the reactor's thread pool)."""
    return defer.maybeDeferred(f, *args)


@pytest.fixture
def impatient(db):
    """The same database through connections that give up on a lock after 0.2 s (instead of 30 s),
    and how to hold that lock from another connection, as a long transaction elsewhere would."""
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite":
        quick = Database(create_engine(url, connect_args={"timeout": 0.2}))

        def hold():
            holder = sqlite3.connect(url.database, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            return holder.close
    else:
        options = f"{url.query['options']} -clock_timeout=200"
        quick = Database(create_engine(url.update_query_dict({"options": options})))

        def hold():
            conn = db.engine.connect()
            conn.execute(text("LOCK TABLE secretary_state_changes IN ACCESS EXCLUSIVE MODE"))
            return lambda: (conn.rollback(), conn.close())
    yield quick, hold
    quick.dispose()


def test_rows_are_stored_in_the_order_they_happened(db):
    repo = TeamRepository(db)
    writer = StateHistory(repo.append_states, blocking, Clock(), batch=2)
    for n in range(5):
        writer.add(change(n))
    assert writer.pending() == 0
    assert [c.reason for c in repo.history()] == [f"motif {n}" for n in (4, 3, 2, 1, 0)]


def test_rows_are_kept_and_retried_while_the_database_is_locked(db, impatient):
    quick, hold = impatient
    clock = Clock()
    writer = StateHistory(TeamRepository(quick).append_states, blocking, clock, max_backoff_s=1.0)
    release = hold()
    try:
        writer.add(change(1))
        writer.add(change(2))
        assert (writer.pending(), writer.failures) == (2, 1)
        clock.advance(0.2)  # the retry: still locked
        assert (writer.pending(), writer.failures) == (2, 2)
        flushed = writer.flush()
        assert not flushed.called
    finally:
        release()
    clock.advance(0.4)
    assert writer.pending() == 0 and flushed.called
    assert [c.reason for c in TeamRepository(db).history()] == ["motif 2", "motif 1"]


def test_a_refused_row_is_dropped_alone(db, caplog):
    repo, clock = TeamRepository(db), Clock()
    later = lambda f, *args: task.deferLater(clock, 0, f, *args)  # noqa: E731 - each write when the clock moves
    writer = StateHistory(repo.append_states, later, clock)
    naive = StateChange(dt.datetime(2026, 12, 1, 9, 0), "alice", "paused", "mauvais", "super")  # refused by the store
    for row in (change(1), naive, change(3), change(4)):
        writer.add(row)  # the first goes alone, the three others wait for it: one batch
    with caplog.at_level(logging.ERROR):
        for _ in range(6):
            clock.advance(0)
    assert writer.pending() == 0
    assert [c.reason for c in repo.history()] == ["motif 4", "motif 3", "motif 1"]
    assert caplog.text.count("refused, dropped") == 1


def test_stopping_writes_what_is_queued(db):
    repo = TeamRepository(db)
    writer = StateHistory(repo.append_states, blocking, Clock())
    writer.startService()
    writer.add(change(1))
    d = writer.stopService()
    assert d.called and len(repo.history()) == 1


# --- the team when the service starts -----------------------------------------------------------------

SETTINGS_TEAM = {"*": ("alice", "bob")}


def start(db, clock, seed_coverage):
    settings = ControllerSettings(secretaries=seed_coverage, secretary_domain=EDGE)
    desk = Desk(settings, clock)
    service = TeamService(TeamRepository(db), desk, seed_team(seed_coverage, {}, ("pause", "déjeuner")), clock,
                          blocking, reload_s=30)
    service.startService()
    return desk, service


def test_the_settings_seed_the_team_once_then_the_database_is_the_source(db, caplog):
    clock = Clock()
    clock.advance(NOW.timestamp())
    with caplog.at_level(logging.INFO, logger="callrouter.controller.team"):
        desk, service = start(db, clock, SETTINGS_TEAM)
    service.stopService()
    assert "team seeded from the settings" in caplog.text and "not read again" in caplog.text
    assert sorted(a.id for a in desk.queues.secretaries()) == ["alice", "bob"] and desk.team_version == 1
    [seeded] = AuditLog(db).query(action="team.seed")
    assert (seeded.actor, seeded.at) == ("system", NOW)

    TeamRepository(db).set_secretary(Actor("super", "127.0.0.1"), "carol", ["*"], {}, NOW)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="callrouter.controller.team"):
        desk, service = start(db, clock, {"*": ("zoe",)})  # the settings changed: ignored now
    assert "team read from the database (version 2" in caplog.text and "only its first seed" in caplog.text
    assert sorted(a.id for a in desk.queues.secretaries()) == ["alice", "bob", "carol"]
    assert len(AuditLog(db).query(action="team.seed")) == 1

    TeamRepository(db).remove_secretary(Actor("super", "127.0.0.1"), "bob", NOW)  # through another node
    clock.advance(30)
    assert sorted(a.id for a in desk.queues.secretaries()) == ["alice", "carol"] and desk.team_version == 3
    service.stopService()
