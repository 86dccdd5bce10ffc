"""The node lease and the lead as services on an injected clock (task.Clock), over an in-memory
store whose time is that clock: renewals, failures, a newer process of the same name, giving up,
and the single node of SQLite."""

import inspect
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from twisted.internet import task

from callrouter.cluster import ports
from callrouter.cluster.build import ESCALATION, build_cluster
from callrouter.cluster.lease import LeaseTiming
from callrouter.cluster.settings import ClusterSettings
from callrouter.cluster.single import SingleLeases
from callrouter.store.leases import PostgresLeases
from tests.cluster.fakes import FakeDatabase, FakeFollower, FakeLeases, sync

SETTINGS = ClusterSettings(lease_seconds=10.0, renew_seconds=2.0)
TIMING = LeaseTiming(SETTINGS.lease_seconds, SETTINGS.renew_seconds)


class Node:
    """One node: its store handle, lease, lead and follower, on the shared clock and database."""

    def __init__(self, name, db, clock):
        self.store = FakeLeases(db)
        self.registry = CollectorRegistry()
        self.cluster = build_cluster(SETTINGS, name, self.store, clock, sync, self.registry)
        self.follower = FakeFollower()
        self.lead = self.cluster.lead(ESCALATION, lambda fence: None)
        self.leadership = self.lead.service(self.follower)

    def start(self):
        self.cluster.service.startService()
        self.leadership.startService()

    def stop(self):
        self.leadership.stopService()
        self.cluster.service.stopService()

    def metric(self, name, **labels):
        return self.registry.get_sample_value(name, labels)


@pytest.fixture
def clock():
    c = task.Clock()
    c.advance(1_000_000)
    return c


@pytest.fixture
def db(clock):
    return FakeDatabase(clock)


def advance(clock, seconds, step=0.1):
    end = clock.seconds() + seconds
    while clock.seconds() < end:
        clock.advance(min(step, end - clock.seconds()))


def protocol_methods(protocol):
    return sorted(n for n, v in vars(protocol).items() if inspect.isfunction(v) and not n.startswith("_"))


@pytest.mark.parametrize("real", [PostgresLeases, SingleLeases, FakeLeases])
def test_the_stores_have_the_lease_store_signatures(real):
    for name in protocol_methods(ports.LeaseStore):
        assert (list(inspect.signature(getattr(real, name)).parameters)
                == list(inspect.signature(getattr(ports.LeaseStore, name)).parameters)), name


def test_the_first_node_leads_the_second_waits_and_the_leader_reconciles_each_tick(db, clock):
    a, b = Node("a", db, clock), Node("b", db, clock)
    a.start()
    b.start()
    assert (a.follower.running, b.follower.running) == (True, False)
    assert a.lead.holds() and not b.lead.holds()
    advance(clock, 3 * SETTINGS.renew_seconds)
    assert a.follower.reconciles == 3 and b.follower.reconciles == 0
    assert a.metric("callrouter_cluster_leading", role="escalation") == 1
    assert b.metric("callrouter_cluster_leading", role="escalation") == 0


def test_a_leader_cut_off_from_the_database_stops_before_the_other_takes_over(db, clock):
    a, b = Node("a", db, clock), Node("b", db, clock)
    a.start()
    b.start()
    a.store.reachable = False
    cut_at, stopped_at, taken_at = clock.seconds(), None, None
    while taken_at is None:
        clock.advance(0.05)
        if stopped_at is None and not a.lead.holds():
            stopped_at = clock.seconds()
        if b.lead.holds():
            taken_at = clock.seconds()
        assert not (a.lead.holds() and b.lead.holds())
    assert stopped_at < cut_at + SETTINGS.lease_seconds <= taken_at
    advance(clock, SETTINGS.renew_seconds)
    assert not a.follower.running and b.follower.running
    assert a.metric("callrouter_node_lease_lost_total", reason="not_renewed") == 1


def test_a_leader_back_after_its_lease_expired_rejoins_under_a_new_epoch_and_follows(db, clock, caplog):
    a, b = Node("a", db, clock), Node("b", db, clock)
    a.start()
    b.start()
    a.store.reachable = False
    advance(clock, SETTINGS.lease_seconds + 2 * SETTINGS.renew_seconds)
    assert b.follower.running
    a.store.reachable = True
    with caplog.at_level(logging.INFO, logger="callrouter.cluster"):
        advance(clock, 2 * SETTINGS.renew_seconds)
    assert a.cluster.node.epoch == 2 and a.cluster.node.holds()
    assert not a.follower.running and a.follower.starts == 1
    assert db.leads[ESCALATION][0] == "b"
    assert "node a holds its lease, epoch 2" in caplog.text


def test_a_newer_process_of_the_same_node_fences_the_older_out_for_good(db, clock):
    old = Node("a", db, clock)
    old.start()
    assert old.follower.running
    newer = Node("a", db, clock)
    newer.cluster.service.startService()   # epoch 2: the old process's renewal is refused
    advance(clock, SETTINGS.lease_seconds)
    assert old.cluster.node.out and not old.lead.holds() and not old.follower.running
    assert old.metric("callrouter_node_lease_lost_total", reason="superseded") == 1
    newer.leadership.startService()
    advance(clock, SETTINGS.lease_seconds + SETTINGS.renew_seconds)
    assert newer.follower.running and not old.follower.running
    assert old.follower.starts == 1


def test_a_leader_stopping_gives_the_lead_up_for_the_next_tick_of_another(db, clock):
    a, b = Node("a", db, clock), Node("b", db, clock)
    a.start()
    b.start()
    a.stop()
    assert not a.follower.running and db.leads[ESCALATION][0] is None
    assert db.nodes["a"][1] <= clock.seconds()  # the lease given up too
    advance(clock, SETTINGS.renew_seconds)
    assert b.follower.running


def test_a_failing_database_is_logged_once_not_at_every_tick(db, clock, caplog):
    a = Node("a", db, clock)
    a.start()
    a.store.reachable = False
    with caplog.at_level(logging.WARNING, logger="callrouter.cluster"):
        advance(clock, 4 * SETTINGS.renew_seconds)
    assert caplog.text.count("lease renew failed") == 1
    assert caplog.text.count("escalation lead: not read") == 1


def test_the_single_node_of_sqlite_always_holds_and_leads_at_once(clock):
    registry = CollectorRegistry()
    cluster = build_cluster(SETTINGS, "local", None, clock, sync, registry)
    follower = FakeFollower()
    lead = cluster.lead(ESCALATION, lambda fence: "chains")
    assert cluster.single and lead.chains == "chains"
    cluster.service.startService()
    leadership = lead.service(follower)
    leadership.startService()
    assert follower.running and lead.holds()
    clock.advance(10 * SETTINGS.lease_seconds)   # nothing to renew, nothing to lose
    assert lead.holds() and follower.running and follower.reconciles >= 1
    assert registry.get_sample_value("callrouter_node_lease_held") == 1


outage = st.tuples(st.sampled_from("ab"), st.floats(0, 50), st.floats(0.5, 25))


@settings(max_examples=40, deadline=None)
@given(st.lists(outage, max_size=4))
def test_two_nodes_never_both_lead_and_one_leads_once_both_reach_the_database(outages):
    clock = task.Clock()
    clock.advance(1_000_000)
    start = clock.seconds()
    db = FakeDatabase(clock)
    nodes = {"a": Node("a", db, clock), "b": Node("b", db, clock)}
    for node in nodes.values():
        node.start()
    while clock.seconds() < start + 90:
        t = clock.seconds() - start
        for name, node in nodes.items():
            node.store.reachable = not any(n == name and s <= t < s + d for n, s, d in outages)
        clock.advance(0.1)
        assert not (nodes["a"].lead.holds() and nodes["b"].lead.holds())
    # Both reach the database again since t = 75 at the latest: one of them leads.
    assert sum(n.lead.holds() for n in nodes.values()) == 1
    assert sum(n.follower.running for n in nodes.values()) == 1
