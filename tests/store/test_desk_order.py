"""The serving order across nodes (callrouter.domain.desk_view.plan over the view read from the real
PostgreSQL) gives the same assignment as one node serving the same calls with the same team in its
own line (callrouter.controller.queues + callrouter.domain.serving), however the calls are split
over the nodes."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import delete

from callrouter.controller.queues import QueueBook
from callrouter.domain.desk_view import SecretaryRow, WaitingRow, plan
from callrouter.store.desk import DeskStore
from callrouter.store.leases import PostgresLeases
from callrouter.store.models import DeskOffer, DeskSecretary, DeskWaiting
from callrouter.store.testing import fresh_database

NODES = ("a", "b", "c")
PHONES = [f"sip:s{i}@192.0.2.1" for i in range(4)]
QUEUES = ("general", "urgent")
STRATEGIES = ("longest_idle", "fewest_calls", "skill", "ring_all")
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
T0 = NOW.timestamp() - 600


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    with fresh_database("postgresql", tmp_path_factory.mktemp("desk")) as database:
        leases = PostgresLeases(database)
        epochs = {n: leases.acquire(n, 300.0, "host", 1).epoch for n in NODES}
        yield database, epochs


calls = st.lists(st.tuples(st.sampled_from(QUEUES), st.integers(0, 2), st.integers(0, 50), st.sampled_from(NODES),
                           st.sets(st.sampled_from(PHONES), max_size=2)), min_size=1, max_size=7)
team = st.fixed_dictionaries({
    "coverage": st.fixed_dictionaries({q: st.lists(st.sampled_from(PHONES), min_size=1, max_size=4, unique=True)
                                       for q in QUEUES}),
    "idle": st.lists(st.integers(0, 100), min_size=len(PHONES), max_size=len(PHONES)),
    "paused": st.sets(st.sampled_from(PHONES), max_size=1),
    "busy": st.sets(st.sampled_from(PHONES), max_size=1),
    "levels": st.lists(st.integers(1, 3), min_size=len(PHONES), max_size=len(PHONES)),
    "strategy": st.sampled_from(STRATEGIES),
})


def single_node(rows, t):
    """One node holding every call: its own line dispatched as the controller does."""
    book = QueueBook({f"cab/{q}": uris for q, uris in t["coverage"].items()},
                     levels={u: {"cab": t["levels"][i]} for i, u in enumerate(PHONES)
                             if any(u in c for c in t["coverage"].values())})
    for i, a in enumerate(book.secretaries()):
        a.idle_since = float(t["idle"][PHONES.index(a.uri)])
        a.paused = "pause" if a.uri in t["paused"] else None
        a.activity = "on_call" if a.uri in t["busy"] else "idle"
    for r in rows:
        book.enqueue(r.call_id, r.practice, r.queue, r.priority, r.enqueued_at, strategy=r.strategy)
    tried = {r.call_id: set(r.tried) for r in rows}
    out = []
    while (pair := book.next_offer(tried, NOW)) is not None:
        w, chosen = pair
        for a in chosen:
            a.activity = "ringing"
        book.remove(w.session)
        out.append((w.session, sorted(a.id for a in chosen)))
    return out, book


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=calls, t=team)
def test_calls_split_over_nodes_are_served_as_one_node_would(pg, calls, t):
    db, epochs = pg
    with db.transaction() as s:
        for model in (DeskOffer, DeskWaiting, DeskSecretary):
            s.execute(delete(model))
    rows = [WaitingRow(f"call{i}", n, "cab", q, f"cab/{q}", prio, T0 + at, i, t["strategy"], "Europe/Paris",
                       frozenset(tried))
            for i, (q, prio, at, n, tried) in enumerate(calls)]
    expected, book = single_node(rows, t)
    stores = {n: DeskStore(db, n) for n in NODES}
    for r in rows:
        assert stores[r.node_id].put_waiting(r, epochs[r.node_id])
    for a in book.secretaries():
        stores["a"].set_state(SecretaryRow(a.id, True, a.paused), by="test")
    for i, uri in enumerate(sorted(t["busy"])):  # on a call through node b, from an earlier call
        stores["b"].put_waiting(WaitingRow(f"old{i}", "b", "cab", "general", "cab/general", 0, T0 - 999, 0), epochs["b"])
        assert stores["b"].claim(f"old{i}", [uri], epochs["b"]).granted
    members = book.secretaries()
    for a in members:
        a.activity, a.paused = "idle", None  # what the node knows of her itself: the view says the rest
    covering = lambda practice, queue, line: book.covering(practice, queue, line)  # noqa: E731
    covering_uris = lambda p, q, line: [a.uri for a in covering(p, q, line)]  # noqa: E731
    shared = []
    for n in NODES:
        mine = [(w.call_id, sorted(ids)) for w, ids in plan(stores[n].view(NOW), members, covering_uris, NOW)
                if w.node_id == n]
        shared.extend(mine)
    order = {call: i for i, (call, _) in enumerate(expected)}
    assert sorted(shared, key=lambda p: order.get(p[0], 99)) == expected
