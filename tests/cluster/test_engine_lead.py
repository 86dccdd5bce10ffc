"""The escalation engine as a follower of the lead (on SQLite, with an injected clock): it stops
sending the moment its node stops leading, a chain started on a node that does not lead is only
stored until the leader's reconcile takes it, an acknowledgement recorded elsewhere is seen at the
next reconcile, and the single node of SQLite leads from the start."""

import pytest
from prometheus_client import CollectorRegistry

from callrouter.cluster.build import ESCALATION, build_cluster
from callrouter.cluster.settings import ClusterSettings
from callrouter.escalation.engine import EscalationEngine
from callrouter.escalation.metrics import EscalationMetrics
from callrouter.store.escalations import EscalationRepository
from callrouter.store.testing import fresh_database
from tests.escalation.support import SETTINGS, FakeChannel, clock_at, dialplan, sync


@pytest.fixture
def db(tmp_path):
    with fresh_database("sqlite", tmp_path) as database:
        yield database


@pytest.fixture
def channels():
    return {"sms": FakeChannel(), "email": FakeChannel()}


class Switch:
    def __init__(self):
        self.on = True

    def __call__(self):
        return self.on


def engine_on(db, channels, clock, leads=None):
    plan = dialplan()
    return EscalationEngine(EscalationRepository(db), channels, lambda practice: plan, SETTINGS, clock,
                            EscalationMetrics(CollectorRegistry()), sync, leads=leads)


def start_chain(engine):
    ids = []
    engine.start("call-1", dialplan(), "urgent", "+33612345678").addCallback(ids.append)
    return ids[0]


def sent(channels):
    return [m.to for ch in channels.values() for m in ch.sent]


def test_an_engine_whose_node_stops_leading_sends_nothing_more_and_leaves_the_chain_open(db, channels):
    clock, leads = clock_at(), Switch()
    engine = engine_on(db, channels, clock, leads)
    engine.startService()
    eid = start_chain(engine)
    assert sent(channels) == ["+33611111111", "martin@example.org"]  # step 0 and 1, then a 180 s wait
    leads.on = False
    clock.advance(600)
    assert sent(channels) == ["+33611111111", "martin@example.org"]
    assert EscalationRepository(db).get(eid).state == "active"  # the next leader goes on with it


def test_a_chain_started_where_the_engine_does_not_run_is_stored_and_the_leader_takes_it(db, channels):
    clock = clock_at()
    follower = engine_on(db, {"sms": FakeChannel(), "email": FakeChannel()}, clock)
    eid = start_chain(follower)                      # not leading: its service is not running
    assert follower.active_ids() == [] and EscalationRepository(db).get(eid).steps == ()
    leader = engine_on(db, channels, clock)
    leader.startService()
    leader.reconcile()                                # the leader's next tick takes it
    assert leader.active_ids() == [eid]
    assert sent(channels)[0] == "+33611111111"


def test_an_acknowledgement_recorded_by_another_node_stops_the_chain_at_the_next_reconcile(db, channels):
    clock = clock_at()
    engine = engine_on(db, channels, clock)
    engine.startService()
    eid = start_chain(engine)
    EscalationRepository(db).acknowledge(eid, "dr-martin", "link", engine.now())   # through another node
    engine.reconcile()
    assert engine.active_ids() == []
    clock.advance(600)
    assert sent(channels) == ["+33611111111", "martin@example.org"]


def test_the_single_node_of_sqlite_leads_at_once_and_runs_its_chains(db, channels):
    clock = clock_at()
    cluster = build_cluster(ClusterSettings(), "local", None, clock, sync, CollectorRegistry())
    repo = EscalationRepository(db)
    lead = cluster.lead(ESCALATION, lambda fence: repo)
    engine = engine_on(db, channels, clock, lead.holds)
    cluster.service.startService()
    lead.service(engine).startService()
    assert engine.running
    start_chain(engine)
    assert sent(channels) == ["+33611111111", "martin@example.org"]


def test_a_chain_of_a_tier_the_leader_has_not_reloaded_yet_waits_for_it_rather_than_being_cancelled(db, channels):
    clock = clock_at()
    plans = {"cab": dialplan(escalation={})}         # the leader's dialplans, before its reload
    leader = EscalationEngine(EscalationRepository(db), channels, plans.get, SETTINGS, clock,
                              EscalationMetrics(CollectorRegistry()), sync)
    leader.startService()
    eid = EscalationRepository(db).create("call-1", "cab", "urgent", None, leader.now()).id  # by a node that has it
    leader.reconcile()
    assert EscalationRepository(db).get(eid).state == "active" and sent(channels) == []
    plans["cab"] = dialplan()                         # reloaded
    leader.reconcile()
    assert leader.active_ids() == [eid] and sent(channels)[0] == "+33611111111"
