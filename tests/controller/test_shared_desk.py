"""Two controllers ("nodes") sharing one desk in the real PostgreSQL (callrouter.controller.shared_desk
over callrouter.store.desk): one serving order over both nodes' calls, never two offers to one
secretary, logins and pauses seen by both, nothing rung by a node whose lease is gone. Media is
faked (the commands a worker would get); each node's clock is driven by hand, the store's calls run
at once (the thread pool's job, done inline)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from twisted.internet import defer

from callrouter.controller.shared_desk import SharedDesk
from callrouter.domain.desk_view import SecretaryRow
from callrouter.domain.team import Team
from callrouter.media import protocol as p
from callrouter.store.desk import DeskStore
from callrouter.store.leases import PostgresLeases
from callrouter.store.models import DeskOffer, DeskSecretary, DeskWaiting
from callrouter.store.testing import fresh_database
from tests.controller.conftest import make_harness
from tests.controller.test_calls import queued_call
from tests.pg_private import private_pg  # noqa: F401 (a fixture)

SEC1, SEC2 = "sip:sec1@127.0.0.1:5090", "sip:sec2@127.0.0.1:5091"


def inline(f, *args):
    return defer.maybeDeferred(f, *args)


class Lease:
    """This node's lease as the database has it (PostgresLeases), believed held until told not."""

    def __init__(self, db, node, lease_s=300.0):
        self.leases, self.node = PostgresLeases(db), node
        self.epoch = self.leases.acquire(node, lease_s, "host", 1).epoch
        self.held = True

    def holds(self):
        return self.held


@pytest.fixture
def pg(tmp_path):
    with fresh_database("postgresql", tmp_path / "pg") as db:
        yield db


@pytest.fixture
def nodes(pg, tmp_path):
    made = []

    def build(name, secretaries=(SEC1,)):
        h, ctx = make_harness(tmp_path / name, secretaries={"*": secretaries})
        lease = Lease(pg, name)
        shared = SharedDesk(DeskStore(pg, name), lease, h.desk, h.controller.line, h.clock, inline)
        shared.startService()
        h.lease, h.shared, h.node = lease, shared, name
        made.append((h, ctx))
        return h

    yield build
    for h, ctx in made:
        h.shared.stopService()
        h.recorder.stop()
        ctx.__exit__(None, None, None)


def dials(h):
    return [c for c in h.media.commands(p.Dial)]


def active_offers(pg):
    with pg.transaction() as s:
        return sorted((r.secretary, r.node_id) for r in s.scalars(select(DeskOffer).where(DeskOffer.ended_at.is_(None))))


def tick(*hs, seconds=1.0):
    for h in hs:
        h.clock.advance(seconds)


def test_a_secretary_busy_on_one_node_is_not_offered_a_call_by_the_other(nodes, pg):
    a, b = nodes("a"), nodes("b")
    queued_call(a)
    [dial_a] = dials(a)
    assert dial_a.uri == SEC1 and active_offers(pg) == [(SEC1, "a")]
    leg_b = queued_call(b)
    tick(a, b)
    assert dials(b) == []  # she rings for a's call: b waits
    assert b.controller.sessions[leg_b].state.value == "queued"
    a.answered(dial_a.leg)
    a.clock.advance(30)
    a.ended(dial_a.leg)  # her call over: 15 s of wrap-up, still hers
    tick(a, b, seconds=5)
    assert dials(b) == [] and active_offers(pg) == [(SEC1, "a")]
    assert b.desk.view(SEC1)["state"] == "on_call"  # b's API shows her busy with a's call
    tick(a, seconds=15)  # wrap-up over on a: her offer row ends
    assert active_offers(pg) == []
    tick(b)
    assert b.desk.view(SEC1)["state"] == "ringing"
    [dial_b] = dials(b)
    assert dial_b.uri == SEC1 and active_offers(pg) == [(SEC1, "b")]


def test_the_oldest_call_is_served_first_whichever_node_holds_it(nodes, pg):
    a, b = nodes("a"), nodes("b")
    first = queued_call(a)
    [busy] = dials(a)
    a.answered(busy.leg)
    older = queued_call(b)          # waits on b
    tick(a, b, seconds=5)
    newer = queued_call(a)          # waits on a, arrived later
    a.ended(busy.leg)
    tick(a, b, seconds=16)          # she is free: a's own call is the newer one, so a rings nobody
    assert len(dials(a)) == 1
    assert [d.uri for d in dials(b)] == [SEC1]
    assert b.controller.sessions[older].state.value == "ringing"
    assert a.controller.sessions[newer].state.value == "queued"
    assert first not in a.controller.sessions or a.controller.sessions[first].state.value != "ringing"


def test_a_call_of_the_other_node_counts_in_the_line_s_length_and_places(nodes, pg):
    a, b = nodes("a"), nodes("b")
    queued_call(a)  # she rings for it
    queued_call(b)
    tick(a, b)
    leg = queued_call(a)
    tick(a, b)
    book = a.desk.queues
    assert book.length("cabinet-dr-martin/general") == 2
    assert book.position(a.controller.sessions[leg]) == 2


def test_a_pause_on_one_node_is_seen_by_the_other_and_stops_its_offers(nodes, pg):
    a, b = nodes("a"), nodes("b")
    tick(a, b)
    a.desk.pause(SEC1, by="sec1")
    tick(a, b)
    assert b.desk.view(SEC1)["paused"] == "pause" and b.desk.view(SEC1)["state"] == "paused"
    with pg.transaction() as s:
        assert s.get(DeskSecretary, SEC1).paused == "pause"
    b.desk.resume(SEC1, by="sec1")
    tick(b, a)
    assert a.desk.view(SEC1)["paused"] is None


def test_a_node_whose_lease_is_gone_rings_nobody_and_its_calls_wait(nodes, pg):
    a = nodes("a")
    a.lease.held = False
    leg = queued_call(a)
    tick(a, seconds=3)
    assert dials(a) == [] and a.controller.sessions[leg].state.value == "queued"
    with pg.transaction() as s:
        assert s.scalars(select(DeskWaiting)).all() == []  # nothing written without a lease
    a.lease.held = True
    tick(a)
    assert [d.uri for d in dials(a)] == [SEC1]


def test_a_claim_refused_by_the_database_rings_nobody(nodes, pg):
    """Her row taken by another node between the view and the claim: the unique index says no."""
    a = nodes("a")
    other = DeskStore(pg, "b")
    epoch_b = Lease(pg, "b").epoch
    assert other.hold("elsewhere", SEC1, epoch_b)
    leg = queued_call(a)
    tick(a)
    assert dials(a) == [] and a.controller.sessions[leg].state.value == "queued"
    other.end("elsewhere", SEC1, "answered")
    tick(a)
    assert [d.uri for d in dials(a)] == [SEC1]


def test_two_calls_on_two_nodes_with_two_free_secretaries_get_one_each(nodes, pg):
    a = nodes("a", secretaries=(SEC1, SEC2))
    b = nodes("b", secretaries=(SEC1, SEC2))
    queued_call(a)
    queued_call(b)
    tick(a, b)
    assert {d.uri for d in dials(a)} | {d.uri for d in dials(b)} == {SEC1, SEC2}
    assert sorted(s for s, _ in active_offers(pg)) == [SEC1, SEC2]



def test_a_node_starting_again_takes_the_states_from_the_database_not_from_its_file(pg, tmp_path):
    """Paused through another node while this one was down: its var/secretaries.json still says
    available. The team applied at start (which saves the states) must not put that back."""
    DeskStore(pg, "b").set_state(SecretaryRow(SEC1, True, "réunion"), by="sup")
    h, ctx = make_harness(tmp_path / "a", secretaries={"*": (SEC1,)})
    try:
        shared = SharedDesk(DeskStore(pg, "a"), Lease(pg, "a"), h.desk, h.controller.line, h.clock, inline)
        h.desk.apply_team(Team(version=1, coverage={"*": (SEC1,)}, levels={}, pause_reasons=("réunion",),
                               secretaries=(SEC1,)))  # the team service, started before the shared desk
        shared.startService()
        tick(h)
        assert h.desk.view(SEC1)["paused"] == "réunion"
        with pg.transaction() as s:
            assert s.get(DeskSecretary, SEC1).paused == "réunion"
        shared.stopService()
    finally:
        h.recorder.stop()
        ctx.__exit__(None, None, None)


def test_postgresql_down_a_node_rings_nobody_then_serves_its_callers_when_it_is_back(tmp_path, private_pg):
    """A real PostgreSQL of the test's own, stopped as if it crashed: the bridged call goes on,
    a new caller waits with her music (no claim, so nobody is rung: never two offers), the end of
    the first offer is kept and written once the server is back, then the waiting caller is rung."""
    from callrouter.store.db import Database

    db = Database.from_url(private_pg.url)
    db.upgrade()
    h, ctx = make_harness(tmp_path / "a", secretaries={"*": (SEC1,)})
    shared = SharedDesk(DeskStore(db, "a"), Lease(db, "a"), h.desk, h.controller.line, h.clock, inline)
    try:
        shared.startService()
        queued_call(h)
        [dial] = dials(h)
        h.answered(dial.leg)
        private_pg.stop()
        h.ended(dial.leg)            # her call over while the database is down; 15 s of wrap-up
        second = queued_call(h)
        tick(h, seconds=20)
        for _ in range(5):
            tick(h)
        assert len(dials(h)) == 1 and h.controller.sessions[second].state.value == "queued"
        private_pg.start()
        for _ in range(3):
            tick(h)
        assert [d.uri for d in dials(h)] == [SEC1, SEC1]
        assert h.controller.sessions[second].state.value == "ringing"
        with db.transaction() as s:
            rows = list(s.scalars(select(DeskOffer).order_by(DeskOffer.id)))
        assert [(r.outcome, r.ended_at is None) for r in rows] == [("answered", False), (None, True)]
    finally:
        shared.stopService()
        h.recorder.stop()
        ctx.__exit__(None, None, None)
        db.dispose()


def test_an_offer_row_lost_while_she_is_on_a_call_here_is_written_again(nodes, pg):
    """Her row gone (a hold the database never took): the next reconcile writes it again, so
    another node never sees her free while she talks here."""
    from sqlalchemy import delete

    a, b = nodes("a"), nodes("b")
    queued_call(a)
    [dial] = dials(a)
    a.answered(dial.leg)
    with pg.transaction() as s:
        s.execute(delete(DeskOffer))
    tick(a)  # within a second
    queued_call(b)
    tick(b)
    assert active_offers(pg) == [(SEC1, "a")] and dials(b) == []


def test_a_call_whose_dial_our_worker_could_not_place_is_offered_again(nodes, pg):
    """The worker refuses the dial (no call slot): the call waits a moment at its place and is
    offered again, its row back in line (not left marked offered)."""
    a = nodes("a")
    leg = queued_call(a)
    [dial] = dials(a)
    a.legs.media_event("w0", p.LegEnded(dial.leg, 486, "no call slot", "worker"))
    assert active_offers(pg) == []
    tick(a, seconds=3)  # HOLD_BACK_S, then back in line
    with pg.transaction() as s:
        assert [(r.call_id, r.offered) for r in s.scalars(select(DeskWaiting))] == []  # offered again: gone from the line
    assert len(dials(a)) == 2 and a.controller.sessions[leg].state.value == "ringing"


class Pool:
    """The thread pool held by hand: each store call waits until `step` runs it."""

    def __init__(self):
        self.pending, self.ran = [], []

    def __call__(self, f, *args):
        d = defer.Deferred()
        self.pending.append((f, args, d))
        return d

    def step(self):
        f, args, d = self.pending.pop(0)
        self.ran.append(f.__name__)
        d.callback(f(*args))

    def drain(self):
        while self.pending:
            self.step()


def test_a_call_joining_has_its_row_written_before_the_store_calls_already_waiting(pg, tmp_path):
    h, ctx = make_harness(tmp_path / "a", secretaries={"*": (SEC1,)})
    pool = Pool()
    store = DeskStore(pg, "a")
    shared = SharedDesk(store, Lease(pg, "a"), h.desk, h.controller.line, h.clock, pool)
    try:
        shared.startService()
        pool.drain()
        h.desk.queues.find(SEC1).activity = "on_call"  # nobody free: the call waits
        for _ in range(3):
            shared._write(store.sweep)  # store calls waiting (one running, two behind it)
        leg = queued_call(h)
        pool.ran.clear()
        pool.drain()
        assert pool.ran[:2] == ["sweep", "put_waiting"], pool.ran  # after the one running, before the rest
        key = h.controller.sessions[leg].call_id
        assert [r.call_id for r in store.view().waiting] == [key]
    finally:
        shared.stopService()
        pool.drain()
        h.recorder.stop()
        ctx.__exit__(None, None, None)
