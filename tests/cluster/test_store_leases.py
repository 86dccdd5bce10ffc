"""Leases, leads and fencing in the real PostgreSQL (callrouter.store.leases), on its own clock:
epochs, expiry, takeover only once the holder's lease is gone, writes refused to a node that lost
the lead, a takeover waiting for the old leader's writes in flight, and a paused transaction ended
by the server so that a survivor is never blocked."""

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select

from callrouter.cluster.lease import EXPIRED, RENEWED, SUPERSEDED
from callrouter.cluster.ports import Fence, Fenced
from callrouter.store.escalations import EscalationRepository
from callrouter.store.leases import FencedDatabase, LeaderChains, PostgresLeases, lease_store
from callrouter.store.models import EscalationStepRecord
from callrouter.store.testing import fresh_database
from tests.cluster.fakes import Token

ROLE = "escalation"
T = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def db(tmp_path):
    with fresh_database("postgresql", tmp_path) as database:
        yield database


@pytest.fixture
def leases(db):
    return PostgresLeases(db)


def steps_in(db):
    with db.transaction() as s:
        return [(r.step, r.node, r.state) for r in s.scalars(select(EscalationStepRecord).order_by(EscalationStepRecord.id))]


def leader_of(leases, node, lease_s=30.0):
    epoch = leases.acquire(node, lease_s, "host", 1).epoch
    term = leases.take_lead(ROLE, node, epoch, 1.0)
    return epoch, term


def test_the_leaders_chain_store_has_the_chain_store_signatures():
    import inspect

    from callrouter.escalation.ports import ChainStore

    def parameters(f):
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]

    names = {n for k in ChainStore.__mro__ if k.__module__ == ChainStore.__module__
             for n, v in vars(k).items() if inspect.isfunction(v) and not n.startswith("_")}
    assert names and all(parameters(getattr(LeaderChains, n)) == parameters(getattr(ChainStore, n)) for n in names)


def test_sqlite_has_no_lease_rows_to_keep(tmp_path):
    with fresh_database("sqlite", tmp_path) as sqlite:
        assert lease_store(sqlite) is None


def test_each_acquisition_is_a_new_epoch_and_says_whether_it_displaced_a_live_lease(leases):
    first = leases.acquire("a", 30.0, "host-1", 10)
    assert (first.epoch, first.displaced) == (1, False)
    second = leases.acquire("a", 30.0, "host-2", 20)
    assert (second.epoch, second.displaced) == (2, True)
    assert leases.renew("a", 1, 30.0) == SUPERSEDED
    assert leases.renew("a", 2, 30.0) == RENEWED


def test_an_expired_lease_is_never_renewed_and_a_released_one_is_expired(leases):
    epoch = leases.acquire("a", 0.3, "host", 1).epoch
    time.sleep(0.5)
    assert leases.renew("a", epoch, 30.0) == EXPIRED
    epoch = leases.acquire("a", 30.0, "host", 1).epoch
    leases.release("a", epoch)
    assert leases.renew("a", epoch, 30.0) == EXPIRED
    assert leases.acquire("a", 30.0, "host", 1).displaced is False


def test_the_lead_passes_only_once_its_holders_lease_is_gone(leases):
    a_epoch, a_term = leader_of(leases, "a", lease_s=0.5)
    b_epoch = leases.acquire("b", 30.0, "host", 2).epoch
    assert a_term == 1
    assert leases.take_lead(ROLE, "b", b_epoch, 1.0) is None
    assert leases.take_lead(ROLE, "a", a_epoch, 1.0) == 1   # the holder keeps it
    time.sleep(0.7)
    assert leases.take_lead(ROLE, "a", a_epoch, 1.0) is None  # its lease expired: not even it
    assert leases.take_lead(ROLE, "b", b_epoch, 1.0) == 2
    assert leases.take_lead(ROLE, "b", b_epoch, 1.0) == 2


def test_a_newer_epoch_of_the_leader_voids_its_lead_and_a_given_up_lead_is_taken_at_once(leases):
    a_epoch, _ = leader_of(leases, "a")
    b_epoch = leases.acquire("b", 30.0, "host", 2).epoch
    newer = leases.acquire("a", 30.0, "host", 3).epoch      # node a restarted
    assert leases.take_lead(ROLE, "a", a_epoch, 1.0) is None
    assert leases.take_lead(ROLE, "b", b_epoch, 1.0) == 2     # the old epoch's lead is gone
    leases.release_lead(ROLE, "b", b_epoch)
    assert leases.take_lead(ROLE, "a", newer, 1.0) == 3


def test_fenced_writes_go_through_for_the_leader_and_are_refused_once_the_lead_passed(db, leases):
    a_epoch, term = leader_of(leases, "a", lease_s=0.5)
    token = Token(Fence(ROLE, "a", a_epoch, term))
    chains = LeaderChains(db, token, "a")
    view = chains.create("call-1", "cab", "urgent", None, T)
    assert chains.claim_step(view.id, 0, 0, "sms", "dr-martin", "+33611111111", T)
    time.sleep(0.7)
    b_epoch = leases.acquire("b", 30.0, "host", 2).epoch
    assert leases.take_lead(ROLE, "b", b_epoch, 1.0) == 2
    with pytest.raises(Fenced):
        chains.claim_step(view.id, 0, 1, "sms", "dr-roux", "+33622222222", T)
    assert token.refusals and token.current() is None
    with pytest.raises(Fenced):   # refused at once now, without asking the database
        chains.get(view.id)
    # Starting a chain needs no lead: it is a patient's request, the leader takes it.
    assert chains.create("call-2", "cab", "urgent", None, T).id
    assert [s.step for s in EscalationRepository(db).get(view.id).steps] == [0]


def test_taking_the_lead_waits_for_the_old_leaders_writes_in_flight(db, leases):
    a_epoch, term = leader_of(leases, "a", lease_s=1.0)
    b_epoch = leases.acquire("b", 60.0, "host", 2).epoch
    fenced = FencedDatabase(db, Token(Fence(ROLE, "a", a_epoch, term)), 10.0)
    view = EscalationRepository(db).create("call-1", "cab", "urgent", None, T)
    checked, order = threading.Event(), []

    def old_leader_write():
        with fenced.transaction() as s:   # the lead checked: row locked FOR SHARE till commit
            checked.set()
            time.sleep(1.5)                # meanwhile its lease expires
            s.add(EscalationStepRecord(escalation_id=view.id, round=0, step=0, channel="sms", state="sent",
                                       node="a", attempts=1, created_at=T))
        order.append("old leader committed")

    writer = threading.Thread(target=old_leader_write)
    writer.start()
    checked.wait(10)
    time.sleep(1.2)                        # a's lease has expired now
    assert leases.take_lead(ROLE, "b", b_epoch, 5.0) == term + 1
    order.append("new leader took over")
    writer.join(10)
    assert order == ["old leader committed", "new leader took over"]
    assert steps_in(db) == [(0, "a", "sent")]


def test_a_leader_paused_inside_a_transaction_is_cut_by_the_server_and_the_survivor_takes_over(db, leases):
    a_epoch, term = leader_of(leases, "a", lease_s=0.5)
    b_epoch = leases.acquire("b", 60.0, "host", 2).epoch
    fenced = FencedDatabase(db, Token(Fence(ROLE, "a", a_epoch, term)), 1.0)
    view = EscalationRepository(db).create("call-1", "cab", "urgent", None, T)
    outcome = []

    def paused_leader():
        try:
            with fenced.transaction() as s:
                time.sleep(3.0)            # paused with its row lock: ended by the server after 1 s
                s.add(EscalationStepRecord(escalation_id=view.id, round=0, step=0, channel="sms", state="sent",
                                           node="a", attempts=1, created_at=T))
            outcome.append("committed")
        except Exception as exc:
            outcome.append(type(exc).__name__)

    writer = threading.Thread(target=paused_leader)
    writer.start()
    time.sleep(0.7)
    taken = None
    for _ in range(10):                    # each try waits for the lock at most 0.5 s
        try:
            taken = leases.take_lead(ROLE, "b", b_epoch, 0.5)
        except Exception:
            continue
        if taken:
            break
    writer.join(10)
    assert taken == term + 1
    assert outcome and outcome != ["committed"]
    assert steps_in(db) == []


def test_the_new_leader_marks_every_send_left_in_flight_unknown_whoever_claimed_it(db, leases):
    epoch, term = leader_of(leases, "b")
    plain = EscalationRepository(db, "a")
    view = plain.create("call-1", "cab", "urgent", None, T)
    plain.claim_step(view.id, 0, 0, "sms", "dr-martin", "+33611111111", T)   # node a died sending it
    chains = LeaderChains(db, Token(Fence(ROLE, "b", epoch, term)), "b")
    assert chains.mark_interrupted_sends() == 1
    assert steps_in(db) == [(0, "a", "unknown")]
