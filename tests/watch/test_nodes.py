"""Two nodes' forwarding watches on one real PostgreSQL, in-process on one injected clock, each
with its node lease and the cluster's `watch` lead (tests/cluster does the same for the escalation
engine): only the leading node places watch calls; a call back reaching the other node's edge is
released there and passes the leader's attempt, even when that release ends the leader's leg
first; a node that lost its lease places no call, not even its pending retry, and the other node
takes the watch over."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select, text
from twisted.internet import defer
from twisted.internet.task import Clock

from callrouter.cluster.build import build_cluster
from callrouter.cluster.settings import ClusterSettings
from callrouter.controller.legs import LegRouter
from callrouter.domain import watch
from callrouter.domain.watch_views import WatchRefused
from callrouter.escalation.settings import EscalationSettings
from callrouter.events.testing import RecordingPublisher
from callrouter.media import protocol as p
from callrouter.metrics import Metrics
from callrouter.store.leases import FencedDatabase, PostgresLeases
from callrouter.store.models import WatchAttempt
from callrouter.store.testing import fresh_database
from callrouter.store.watch import WatchRepository
from callrouter.watch.build import WATCH_LEAD, build_watch
from callrouter.watch.service import NOT_LEADING
from callrouter.watch.settings import WatchSettings
from tests.controller.conftest import FakeMedia
from tests.factories import dialplan_text, load_one

UTC = dt.timezone.utc
NUMBER, FIRST = "+33100000001", "+33180000100"
SETTINGS = WatchSettings(enabled=True, caller_number=FIRST, caller_range=3, tick_seconds=5)
CLUSTER = ClusterSettings(lease_seconds=10.0, renew_seconds=2.0)
WATCH = """\
watch:
  forwarding: always
  at: ["03:10"]
  timeout: 20s
  retry_after: 60s
"""
MONDAY = dt.datetime(2026, 6, 1, 0, 0, tzinfo=UTC)  # 02:00 in Paris


def run_sync(f, *args):
    return defer.maybeDeferred(f, *args)


class Node:
    def __init__(self, name, db, clock, dialplan):
        self.name, self.db = name, db
        self.cluster = build_cluster(CLUSTER, name, PostgresLeases(db), clock, run_sync, CollectorRegistry())
        lead = self.cluster.lead(WATCH_LEAD, lambda fence: FencedDatabase(db, fence, CLUSTER.lease_seconds))
        self.lead = lead
        self.store = WatchRepository(db, name, claims=lead.chains)
        self.media = FakeMedia(RecordingPublisher())
        self.legs = LegRouter()
        self.parts = build_watch(SETTINGS, EscalationSettings(), "127.0.0.1:5080", self.store, self.media, self.legs,
                                 lambda: {dialplan.practice: dialplan}, clock, run_sync, Metrics(),
                                 lead=lead, shared=True)
        self.legs.take_calls(self.parts.calls.returning)  # the call controller's hook
        self.services = [self.cluster.service, self.parts.lead, self.parts.service]

    def start(self):
        for s in self.services:
            s.startService()

    def stop(self):
        for s in reversed(self.services):
            if s.running:
                s.stopService()

    def dials(self):
        return self.media.commands(p.Dial)

    def hangups(self, leg=None):
        return [(c.leg, c.code) for c in self.media.commands(p.Hangup, leg)]

    def call_back(self, dial, leg="w1-1"):
        """The forwarded call reaching this node's edge, from the number the watch call presented."""
        self.legs.media_event("w1", p.IncomingCall(leg, "c", "Test renvoi", "", NUMBER, dial.from_user))

    def expire_lease(self):
        """The database lets this node's lease run out (a node cut off from it, or frozen)."""
        with self.db.transaction() as s:
            s.execute(text("UPDATE node_leases SET expires_at = clock_timestamp() - interval '1 second' "
                           "WHERE node_id = :n"), {"n": self.name})


@pytest.fixture
def pg(tmp_path):
    with fresh_database("postgresql", tmp_path) as database:
        yield database


@pytest.fixture
def nodes(pg, tmp_path):
    dialplan = load_one(tmp_path, dialplan_text(extra=WATCH))
    clock = Clock()
    clock.advance(slot(dialplan).at.timestamp() - 30)  # the lease renewals are transactions: not hours of them
    a, b = Node("a", pg, clock, dialplan), Node("b", pg, clock, dialplan)
    a.start()
    advance(clock, 3)
    b.start()
    advance(clock, 3)
    yield clock, a, b, dialplan
    a.stop()
    b.stop()


def settled(d):
    """What a Deferred fired with (a WatchRefused, for a refusal), consumed."""
    box = []
    d.addBoth(box.append)
    return box[0].value if hasattr(box[0], "value") and isinstance(box[0].value, Exception) else box[0]


def slot(dialplan):
    return watch.plan(dialplan, MONDAY, MONDAY + dt.timedelta(days=1), 4)[0]


def advance(clock, seconds, step=0.5):
    end = clock.seconds() + seconds
    while clock.seconds() < end:
        clock.advance(min(step, end - clock.seconds()))


def test_only_the_leading_node_places_the_slot_s_call_and_the_other_s_edge_passes_it(nodes):
    clock, a, b, dialplan = nodes
    assert a.lead.holds() and not b.lead.holds()
    planned = slot(dialplan)
    while not a.dials() and clock.seconds() < planned.at.timestamp() + SETTINGS.tick_seconds + 1:
        clock.advance(0.5)
    [dial] = a.dials()
    assert b.dials() == []  # b read the same schedule but does not lead the watch
    advance(clock, 2.5, step=0.25)
    b.call_back(dial)
    assert b.hangups("w1-1") == [("w1-1", SETTINGS.release_code)]  # released at once, at b
    # b's release makes the operator end a's leg before a read the store: a looks before deciding.
    a.legs.media_event("w0", p.LegEnded(dial.leg, SETTINGS.release_code, "Decline", "remote"))
    [run] = a.store.runs()
    assert (run.node, run.state, run.outcome, run.slot_key) == ("a", "passed", "passed", planned.key)
    assert 2400 <= run.rtt_ms <= 2600 and [x.outcome for x in run.attempts] == ["passed"]
    assert run.attempts[0].name_kept is False  # "Test renvoi" without the token
    with a.db.transaction() as s:
        assert s.scalar(select(WatchAttempt.returned_node).where(WatchAttempt.run_id == run.id)) == "b"
    advance(clock, 120, step=1.0)
    assert len(a.dials()) == 1 and b.dials() == []  # the slot ran once, on one node


def test_a_call_back_at_the_other_node_ends_the_leader_s_ringing_attempt(nodes):
    clock, a, b, _ = nodes
    assert settled(a.parts.service.run_now("test-practice", None, "sophie")).state == "calling"
    [dial] = a.dials()
    a.legs.media_event("w0", p.LegState(dial.leg, "ringing"))
    advance(clock, 4, step=0.5)
    b.call_back(dial)
    advance(clock, 1.5, step=0.5)  # a reads the store every second
    [run] = a.store.runs()
    assert run.state == "passed" and 4000 <= run.rtt_ms <= 4600 and run.attempts[0].rang
    assert (dial.leg, 487) in a.hangups(dial.leg)  # a hung its own leg up


def test_a_node_that_lost_its_lease_places_no_call_and_the_other_takes_the_watch_over(nodes):
    clock, a, b, _ = nodes
    settled(a.parts.service.run_now("test-practice", None, "sophie"))
    [first] = a.dials()
    a.legs.media_event("w0", p.LegEnded(first.leg, 486, "Busy", "remote"))  # busy: a retry in 60 s
    refused = settled(b.parts.service.run_now("test-practice", None, "sophie"))
    assert isinstance(refused, WatchRefused) and str(refused) == NOT_LEADING
    a.expire_lease()
    advance(clock, 70, step=0.5)
    assert not a.lead.holds() and b.lead.holds()
    assert len(a.dials()) == 1  # no retry from a node without its lease
    [run] = a.store.runs()
    assert run.state == "interrupted" and [x.n for x in run.attempts] == [1]
    assert str(settled(a.parts.service.run_now("test-practice", None, "sophie"))) == NOT_LEADING
    got = settled(b.parts.service.run_now("test-practice", None, "sophie"))
    assert got.node == "b" and len(b.dials()) == 1 and len(a.dials()) == 1
