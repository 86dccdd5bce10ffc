"""The shared desk in the real PostgreSQL (callrouter.store.desk): one active offer per secretary
whatever the node, claims fenced by the node's lease, void rows of a dead node ignored and swept,
the view in one snapshot."""

import json
import threading

import pytest
from sqlalchemy import select

from callrouter.domain.desk_view import SecretaryRow, WaitingRow
from callrouter.store.desk import DeskStore
from callrouter.store.leases import PostgresLeases
from callrouter.store.models import DeskOffer
from callrouter.store.testing import fresh_database

T0 = 1_780_000_000.0


@pytest.fixture
def db(tmp_path):
    with fresh_database("postgresql", tmp_path) as database:
        yield database


def node(db, name, lease_s=30.0):
    """A node holding its lease: (its desk store, its epoch)."""
    epoch = PostgresLeases(db).acquire(name, lease_s, "host", 1).epoch
    return DeskStore(db, name), epoch


def waiting(call_id, node_id, at=0.0, queue="general", priority=0, tried=()):
    return WaitingRow(call_id, node_id, "cab", queue, f"cab/{queue}", priority, T0 + at, 0, tried=frozenset(tried))


def active(db):
    with db.transaction() as s:
        return sorted((r.secretary, r.call_id, r.node_id) for r in s.scalars(select(DeskOffer).where(DeskOffer.ended_at.is_(None))))


def test_two_nodes_racing_for_one_secretary_exactly_one_wins(db):
    """Two connections, two threads, released together: the database grants her to one."""
    a, ea = node(db, "a")
    b, eb = node(db, "b")
    for _round in range(10):
        assert a.put_waiting(waiting(f"ca{_round}", "a"), ea) and b.put_waiting(waiting(f"cb{_round}", "b"), eb)
        start, results = threading.Barrier(2), {}

        def race(store, epoch, call_id):
            start.wait()
            results[store.node] = store.claim(call_id, ["alice"], epoch)

        threads = [threading.Thread(target=race, args=(a, ea, f"ca{_round}")),
                   threading.Thread(target=race, args=(b, eb, f"cb{_round}"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        granted = [n for n, c in results.items() if c.granted]
        assert len(granted) == 1, results
        assert [c.why for c in results.values() if not c.granted] == ["busy"]
        assert [r[0] for r in active(db)] == ["alice"]
        winner = a if granted == ["a"] else b
        winner.end(f"c{granted[0]}{_round}", "alice", "answered")
        assert active(db) == []


def test_a_second_active_offer_for_her_is_refused_until_the_first_ends(db):
    a, ea = node(db, "a")
    b, eb = node(db, "b")
    a.put_waiting(waiting("c1", "a"), ea)
    b.put_waiting(waiting("c2", "b", at=1), eb)
    assert a.claim("c1", ["alice", "bob"], ea).granted
    refused = b.claim("c2", ["bob"], eb)
    assert (refused.granted, refused.why) == (False, "busy")
    assert active(db) == [("alice", "c1", "a"), ("bob", "c1", "a")]
    a.end("c1", "bob", "answered_elsewhere")
    assert b.claim("c2", ["bob"], eb).granted
    assert a.claim("c1", ["alice"], ea).why == "gone"  # its phones already ring: not offered twice


def test_a_node_whose_lease_expired_claims_nothing_and_its_rows_are_void(db):
    a, ea = node(db, "a", lease_s=0.5)
    b, eb = node(db, "b")
    assert a.put_waiting(waiting("c1", "a"), ea)
    assert a.claim("c1", ["alice"], ea).granted
    view = b.view()
    assert [w.call_id for w in view.waiting] == ["c1"] and view.busy() == {"alice"}
    import time
    time.sleep(0.7)  # a's lease runs out on the database's clock
    assert a.put_waiting(waiting("c9", "a"), ea) is False
    a2 = DeskStore(db, "a")
    assert a2.claim("c1", ["bob"], ea).why == "fenced"
    view = b.view()
    assert view.waiting == () and view.offers == ()  # void: ignored
    assert b.sweep() == 2  # and cleaned: the waiting row deleted, the offer ended
    with db.transaction() as s:
        assert [(r.secretary, r.outcome) for r in s.scalars(select(DeskOffer))] == [("alice", "node_lost")]
    b.put_waiting(waiting("c2", "b"), eb)
    assert b.claim("c2", ["alice"], eb).granted  # free again for the living


def test_a_newer_epoch_of_the_same_node_voids_the_older_ones_rows(db):
    a, ea = node(db, "a")
    a.put_waiting(waiting("c1", "a"), ea)
    _, ea2 = node(db, "a")  # restarted: a new epoch
    assert ea2 == ea + 1
    assert a.claim("c1", ["alice"], ea).why == "fenced"
    assert a.view().waiting == ()


def test_the_check_sees_the_view_after_the_locks_and_can_refuse(db):
    a, ea = node(db, "a")
    a.put_waiting(waiting("c1", "a"), ea)
    seen = []

    def check(view):
        seen.append(sorted(w.call_id for w in view.waiting))
        return False

    assert a.claim("c1", ["alice"], ea, check).why == "order"
    assert seen == [["c1"]] and active(db) == []


def test_states_are_shared_and_seeding_keeps_what_is_there(db):
    a, _ = node(db, "a")
    b, _ = node(db, "b")
    a.set_state(SecretaryRow("alice", True, "déjeuner", False, 0), by="alice")
    b.seed_states([SecretaryRow("alice", False), SecretaryRow("bob", True)])
    states = b.view().states
    assert states["alice"] == SecretaryRow("alice", True, "déjeuner", False, 0)
    assert states["bob"].logged_in and states["bob"].paused is None


def test_idle_since_and_answers_come_from_the_offers(db):
    a, ea = node(db, "a")
    a.put_waiting(waiting("c1", "a"), ea)
    a.claim("c1", ["alice"], ea)
    a.answered("c1", "alice")
    assert a.view().idle_since == {}
    a.end("c1", "alice", "answered")
    view = a.view()
    assert set(view.idle_since) == {"alice"}
    assert [(who, call) for who, call, _ in view.answers] == [("alice", "c1")]
    assert a.mine(ea) == []


def test_waiting_rows_keep_their_place_and_what_was_tried(db):
    a, ea = node(db, "a")
    a.put_waiting(waiting("c1", "a", at=5, priority=2), ea)
    a.put_waiting(waiting("c1", "a", at=5, priority=2, tried={"sip:alice@x"}), ea)  # back in line
    [row] = a.view().waiting
    assert (row.enqueued_at, row.priority, row.tried, row.offered) == (T0 + 5, 2, frozenset({"sip:alice@x"}), False)
    a.remove_waiting("c1")
    assert a.view().waiting == ()


def test_another_nodes_change_is_notified_to_the_listener(db):
    """LISTEN on its own connection: a claim by node b reaches node a's listener with b's name."""
    import queue as q

    from callrouter.store.desk_listen import DeskListener

    heard = q.Queue()
    listener = DeskListener(db, heard.put)
    listener.start()
    try:
        b, eb = node(db, "b")
        deadline = __import__("time").monotonic() + 10
        while True:  # the listener's LISTEN may not be in place yet: write until heard
            b.put_waiting(waiting("c1", "b"), eb)
            try:
                assert heard.get(timeout=0.5) == "b"
                break
            except q.Empty:
                assert __import__("time").monotonic() < deadline, "no notification"
    finally:
        listener.stop()


def test_ended_offers_go_with_the_call_records_retention_and_active_ones_stay(db):
    import datetime as dt

    from callrouter.config import RetentionSettings
    from callrouter.store.audit import Actor
    from callrouter.store.retention import RetentionPurger

    a, ea = node(db, "a")
    for call, who in (("c1", "alice"), ("c2", "bob")):
        a.put_waiting(waiting(call, "a"), ea)
        assert a.claim(call, [who], ea).granted
    a.end("c1", "alice", "answered")
    now = dt.datetime.now(dt.timezone.utc)
    kept = RetentionPurger(db, RetentionSettings(call_records_days=1)).purge(Actor("test", "127.0.0.1"), now)
    assert kept.desk_offers == 0
    later = now + dt.timedelta(days=2)
    result = RetentionPurger(db, RetentionSettings(call_records_days=1)).purge(Actor("test", "127.0.0.1"), later)
    assert result.desk_offers == 1 and result.to_json()["desk_offers"] == 1
    assert active(db) == [("bob", "c2", "a")]


def test_an_offer_keeps_the_waiting_calls_its_claim_read(db):
    a, ea = node(db, "a")
    b, eb = node(db, "b")
    a.put_waiting(waiting("c1", "a", at=2.0), ea)
    b.put_waiting(waiting("c0", "b", at=1.0), eb)
    assert a.claim("c1", ["alice"], ea).granted
    b.put_waiting(waiting("c2", "b", at=3.0), eb)  # committed after a's claim: not among what it read
    with db.transaction() as s:
        [offer] = s.scalars(select(DeskOffer))
        assert json.loads(offer.seen) == ["c0", "c1"]
