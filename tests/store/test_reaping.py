"""A lost node's calls closed by the reaper on the real PostgreSQL (callrouter.store.reaping): a
waiting caller becomes one callback task and her record `callback_requested` / `node_lost`; a
bridged call `failed` / `node_lost`; a withheld number no task; a node back under a new epoch, a
live node, a node within the grace and the reaper's own node untouched; run twice, one task; a
reaper that lost its lead writes nothing."""

import datetime as dt

import pytest
from sqlalchemy import select

from callrouter.cluster.ports import Fence, Fenced
from callrouter.store.audit import AuditLog
from callrouter.store.calls import CallRepository
from callrouter.store.leases import FencedDatabase, PostgresLeases
from callrouter.store.models import AuditEntry, CallbackTask, CallLeg
from callrouter.store.reaping import NOTE, CallReaper, task_id_for
from callrouter.store.tasks import TaskRepository
from callrouter.store.testing import fresh_database
from tests.cluster.fakes import Token

T = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
DEAD, ALIVE, ME = "node-a", "node-c", "node-b"
EXPIRY = dt.timedelta(hours=4)
PATIENT, OTHER = "+33612345678", "+33698765432"


@pytest.fixture
def db(tmp_path):
    with fresh_database("postgresql", tmp_path) as database:
        yield database


@pytest.fixture
def leases(db):
    return PostgresLeases(db)


@pytest.fixture
def token(leases):
    epoch = leases.acquire(ME, 60.0, "host", 1).epoch
    term = leases.take_lead("reaper", ME, epoch, 1.0)
    assert term is not None
    return Token(Fence("reaper", ME, epoch, term))


@pytest.fixture
def reaper(db, token):
    return CallReaper(FencedDatabase(db, token, 10.0), ME, EXPIRY)


def gone(leases, node):
    """`node` had a lease and gave it up (or it ran out): gone since now, on the database's clock."""
    epoch = leases.acquire(node, 60.0, "host", 2).epoch
    leases.release(node, epoch)
    return epoch


def calls_of(db, node):
    """Open records written through the real repository, as a node's recorder writes them."""
    repo = CallRepository(db, node)
    repo.open_call(f"{node}-queued", "cab", "+33100000042", PATIENT, T, "w1")
    repo.set_route(f"{node}-queued", "open", "ouvert", T)
    repo.queued(f"{node}-queued", "general", T + dt.timedelta(seconds=20))
    repo.open_call(f"{node}-bridged", "cab", "+33100000042", OTHER, T, "w1")
    repo.queued(f"{node}-bridged", "general", T + dt.timedelta(seconds=5))
    repo.answered(f"{node}-bridged", "sec-1", T + dt.timedelta(seconds=30))
    leg = repo.add_leg(f"{node}-bridged", "secretary", "sip:sec-1@x", T + dt.timedelta(seconds=25))
    repo.open_call(f"{node}-withheld", "cab", "+33100000042", None, T, "w2")
    repo.open_call(f"{node}-menu", "cab", "+33100000042", "0612121212", T, "w2")
    return repo, leg


def tasks(db):
    with db.transaction() as s:
        return list(s.scalars(select(CallbackTask).order_by(CallbackTask.id)))


def open_legs(db, call_id):
    with db.transaction() as s:
        return list(s.scalars(select(CallLeg).where(CallLeg.call_id == call_id, CallLeg.ended_at.is_(None))))


NOW = T + dt.timedelta(minutes=2)


def test_a_lost_nodes_waiting_caller_becomes_one_task_and_a_bridged_call_is_node_lost(db, leases, reaper):
    repo, _ = calls_of(db, DEAD)
    gone(leases, DEAD)
    done = reaper.sweep(0.0, NOW)
    assert sorted((r.call_id, r.kind) for r in done) == [
        (f"{DEAD}-bridged", "node_lost"), (f"{DEAD}-menu", "callback"), (f"{DEAD}-queued", "callback"),
        (f"{DEAD}-withheld", "node_lost")]
    queued, bridged, withheld, menu = (repo.get(f"{DEAD}-{k}") for k in ("queued", "bridged", "withheld", "menu"))
    assert (queued.outcome, queued.cause, queued.ended_at) == ("callback_requested", "node_lost", NOW)
    assert queued.queue_wait_seconds == 100.0
    assert (bridged.outcome, bridged.cause, bridged.secretary) == ("failed", "node_lost", "sec-1")
    assert (withheld.outcome, withheld.cause) == ("failed", "node_lost")
    assert (menu.outcome, menu.cause) == ("callback_requested", "node_lost")
    for call in (queued, bridged, withheld, menu):
        assert open_legs(db, call.id) == []  # the caller's leg, the secretary's: ended with the record
    made = {t.call_id: t for t in tasks(db)}
    assert set(made) == {f"{DEAD}-queued", f"{DEAD}-menu"}
    t = made[f"{DEAD}-queued"]
    assert (t.id, t.practice, t.number, t.source, t.queue, t.state) == (
        task_id_for(f"{DEAD}-queued"), "cab", PATIENT, "node_lost", "general", "open")
    assert t.place_at == T + dt.timedelta(seconds=20)  # her place in line: when she was queued
    assert (t.expires_at, t.note, t.created_by) == (NOW + EXPIRY, NOTE, "system")
    assert made[f"{DEAD}-menu"].number == "+33612121212" and made[f"{DEAD}-menu"].place_at == T
    assert [v.id for v in TaskRepository(db).pending(NOW)] == [  # in line order: by when each joined it
        task_id_for(f"{DEAD}-menu"), task_id_for(f"{DEAD}-queued")]
    with db.transaction() as s:
        audited = [(e.actor, e.action, e.target) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
    assert ("system", "call.reaped", f"call:{DEAD}-bridged") in audited
    assert ("system", "task.create", f"task:{task_id_for(f'{DEAD}-queued')}") in audited
    assert AuditLog(db).verify().ok


def test_a_second_sweep_or_a_retry_makes_no_second_task(db, leases, reaper, token):
    calls_of(db, DEAD)
    gone(leases, DEAD)
    assert len(reaper.sweep(0.0, NOW)) == 4
    assert reaper.sweep(0.0, NOW + dt.timedelta(seconds=1)) == []
    assert reaper.reap(f"{DEAD}-queued", DEAD, 0.0, NOW) is None  # a retry of one that went through
    other = CallReaper(FencedDatabase(db, token, 10.0), ME, EXPIRY)  # another reaper, same records
    assert other.sweep(0.0, NOW) == []
    assert len(tasks(db)) == 2


def test_a_caller_who_had_a_task_gets_no_second_one(db, leases, reaper):
    repo, _ = calls_of(db, DEAD)
    TaskRepository(db).create("cab", PATIENT, "overflow", T, T + EXPIRY, task_id="asked", call_id=f"{DEAD}-queued")
    gone(leases, DEAD)
    reaper.sweep(0.0, NOW)
    assert [t.id for t in tasks(db) if t.call_id == f"{DEAD}-queued"] == ["asked"]
    assert repo.get(f"{DEAD}-queued").outcome == "callback_requested"


def test_a_live_node_a_node_back_under_a_new_epoch_and_this_node_are_untouched(db, leases, reaper):
    repo_alive, _ = calls_of(db, ALIVE)
    leases.acquire(ALIVE, 60.0, "host", 3)
    repo_back, _ = calls_of(db, DEAD)
    gone(leases, DEAD)
    leases.acquire(DEAD, 60.0, "host", 4)  # restarted: its name holds a live lease again
    repo_me, _ = calls_of(db, ME)
    assert reaper.sweep(0.0, NOW) == []
    for repo, node in ((repo_alive, ALIVE), (repo_back, DEAD), (repo_me, ME)):
        assert all(repo.get(f"{node}-{k}").ended_at is None for k in ("queued", "bridged", "withheld", "menu"))
    assert tasks(db) == []


def test_a_node_gone_for_less_than_the_grace_is_untouched(db, leases, reaper):
    repo, _ = calls_of(db, DEAD)
    gone(leases, DEAD)
    assert reaper.sweep(3600.0, NOW) == []
    assert repo.get(f"{DEAD}-queued").ended_at is None


def test_a_record_with_no_lease_row_is_not_reaped(db, reaper):
    repo, _ = calls_of(db, "never-leased")  # e.g. written by a SQLite-era node name: nobody to judge it by
    assert reaper.sweep(0.0, NOW) == []
    assert repo.get("never-leased-queued").ended_at is None


def test_a_reaper_that_lost_its_lead_writes_nothing(db, leases, token):
    repo, _ = calls_of(db, DEAD)
    gone(leases, DEAD)
    stale = Token(Fence("reaper", ME, token.fence.epoch, token.fence.term + 1))  # not the term the row holds
    with pytest.raises(Fenced):
        CallReaper(FencedDatabase(db, stale, 10.0), ME, EXPIRY).sweep(0.0, NOW)
    assert stale.refusals and stale.current() is None
    leases.release_lead("reaper", ME, token.fence.epoch)  # given up: the old token is refused too
    with pytest.raises(Fenced):
        CallReaper(FencedDatabase(db, token, 10.0), ME, EXPIRY).reap(f"{DEAD}-queued", DEAD, 0.0, NOW)
    assert repo.get(f"{DEAD}-queued").ended_at is None and tasks(db) == []


def test_a_node_coming_back_while_the_list_is_read_keeps_its_calls(db, leases, reaper):
    repo, _ = calls_of(db, DEAD)
    gone(leases, DEAD)
    found = reaper.lost_calls(0.0)
    assert len(found) == 4
    leases.acquire(DEAD, 60.0, "host", 5)  # back between the list and the reaping
    assert [reaper.reap(call_id, node, 0.0, NOW) for call_id, node in found] == [None] * 4
    assert repo.get(f"{DEAD}-queued").ended_at is None


def test_a_task_id_is_made_from_the_call_id_and_fits_the_tasks_id():
    assert task_id_for("abc123") == "lost-abc123"
    long = task_id_for("x" * 64)
    assert long.startswith("lost-") and len(long) <= 64 and long == task_id_for("x" * 64)
    assert task_id_for("a b") != task_id_for("a_b") and " " not in task_id_for("a b")


def test_a_callback_call_a_lost_node_was_placing_goes_back_in_line_and_a_live_nodes_goes_on(db, leases, reaper):
    for node in (DEAD, ALIVE):
        repo = TaskRepository(db, node=node)
        repo.create("cab", PATIENT, "overflow", T, T + EXPIRY, task_id=f"t-{node}", queue="general")
        repo.start_attempt(f"t-{node}", "sec-1", f"leg-{node}", T + dt.timedelta(seconds=5))
    leases.acquire(ALIVE, 60.0, "host", 3)
    gone(leases, DEAD)
    [released] = reaper.sweep(0.0, NOW)
    assert (released.kind, released.node, released.task.id) == ("attempt", DEAD, f"t-{DEAD}")
    t = TaskRepository(db).get(f"t-{DEAD}")
    assert (t.state, t.assigned_to, t.attempt_leg, t.attempts) == ("assigned", "sec-1", None, 1)
    assert TaskRepository(db).get(f"t-{ALIVE}").state == "calling"
    assert reaper.sweep(0.0, NOW) == []
    with db.transaction() as s:
        [entry] = [e for e in s.scalars(select(AuditEntry).where(AuditEntry.target == f"task:t-{DEAD}",
                                                                 AuditEntry.action == "task.attempt_failed"))]
    assert entry.actor == "system" and DEAD in entry.details


def test_a_restart_releases_only_its_own_nodes_callback_calls(db):
    for node in (DEAD, ALIVE):
        repo = TaskRepository(db, node=node)
        repo.create("cab", PATIENT, "overflow", T, T + EXPIRY, task_id=f"t-{node}", queue="general")
        repo.start_attempt(f"t-{node}", "sec-1", f"leg-{node}", T)
    assert [v.id for v in TaskRepository(db, node=DEAD).release_interrupted(NOW)] == [f"t-{DEAD}"]
    assert TaskRepository(db).get(f"t-{ALIVE}").state == "calling"


def test_a_sweep_cut_short_by_a_lost_lead_returns_what_it_stored(db, leases, token):
    calls_of(db, DEAD)
    gone(leases, DEAD)
    reaper = CallReaper(FencedDatabase(db, token, 10.0), ME, EXPIRY)
    real_reap, seen = reaper.reap, []

    def reap_then_lose_the_lead(*args):
        if seen:
            leases.release_lead("reaper", ME, token.fence.epoch)
        seen.append(args[0])
        return real_reap(*args)

    reaper.reap = reap_then_lose_the_lead
    done = reaper.sweep(0.0, NOW)
    assert [r.call_id for r in done] == seen[:1]  # the first stored, the second refused
    assert sum(1 for r in CallRepository(db).open_calls() if r.node == DEAD) == 3
