"""Two real node processes on one real PostgreSQL, each with its own path at a real loopback HTTP
SMS gateway: the escalation engine runs on one node at a time, a leader killed with SIGKILL
mid-chain leaves the survivor to finish every chain with no SMS sent twice and no step missing,
a leader paused (SIGSTOP) past its lease is fenced out and, resumed, writes and sends nothing, and
a leader stopped cleanly gives the lead up at once."""

import signal
import time

import pytest
from sqlalchemy import select

from callrouter.store.escalations import EscalationRepository
from callrouter.store.models import EscalationStepRecord, LeadRecord, NodeLeaseRecord
from callrouter.store.testing import fresh_database
from tests.cluster.node_child import DUTY_SMS
from tests.cluster.support import STEPS, WAIT_S, Gateway, spawn, until

LEASE_S, RENEW_S = 3.0, 0.5
A, B = "node-a", "node-b"
CHAINS = 4


@pytest.fixture
def cluster(tmp_path):
    gateway = Gateway()
    gateway.start()
    children = []
    with fresh_database("postgresql", tmp_path) as db, (tmp_path / "nodes.log").open("w") as log:
        def start(node):
            child = spawn(db.url, node, gateway, log, LEASE_S, RENEW_S)
            children.append(child)
            return child

        try:
            yield db, gateway, start, tmp_path / "nodes.log"
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGCONT)
                    child.kill()
                    child.wait(30)
            gateway.stop()


def leader(db):
    with db.transaction() as s:
        row = s.get(LeadRecord, "escalation")
        return None if row is None else (row.node_id, row.node_epoch, row.term)


def lease_of(db, node):
    with db.transaction() as s:
        row = s.get(NodeLeaseRecord, node)
        return None if row is None else (row.epoch, row.expires_at)


def rows_of(db, node):
    with db.transaction() as s:
        return sorted((r.escalation_id, r.round, r.step, r.state) for r in
                      s.scalars(select(EscalationStepRecord).where(EscalationStepRecord.node == node)))


def start_chains(db, n=CHAINS):
    """Chains stored as a node's IVR stores them; the leading node takes them at its next tick."""
    repo = EscalationRepository(db, "ivr-node")
    return [repo.create(f"call-{i}", "cab", "urgent", "+33612345678", _now(db)).id for i in range(n)]


def _now(db):
    from sqlalchemy import func

    with db.transaction() as s:
        return s.scalar(select(func.now()))


def all_ended(db, ids):
    repo = EscalationRepository(db)
    return all(repo.get(i).state == "done" and all(a.state != "pending" and a.state != "sending"
                                                   for a in repo.get(i).duty_alerts) for i in ids)


def step_key(eid, rnd, step):
    return f"esc-{eid}-{rnd}-{step}"


def two_nodes_a_leading(db, start):
    a = start(A)
    until(lambda: (leader(db) or (None,))[0] == A, "node-a to lead")
    b = start(B)
    until(lambda: lease_of(db, B) is not None, "node-b to hold its lease")
    return a, b


def test_a_leader_killed_mid_chain_leaves_the_survivor_to_finish_every_chain_without_duplicate(cluster):
    db, gateway, start, _ = cluster
    a, _b = two_nodes_a_leading(db, start)
    ids = start_chains(db)
    held = step_key(ids[1], 0, 0)
    gateway.hold.add(held)  # node-a is caught sending this one
    until(lambda: {step_key(i, 0, 0) for i in ids} <= set(gateway.keys(A)), "step 0 of every chain at node-a")
    until(lambda: sum(s == "sent" for *_, s in rows_of(db, A)) == CHAINS - 1, "node-a to record the others sent")
    a.send_signal(signal.SIGKILL)
    a.wait(30)
    killed_at = time.monotonic()

    until(lambda: (leader(db) or (None,))[0] == B, "node-b to take the lead")
    until(lambda: all_ended(db, ids), "every chain to end")

    keys = gateway.keys()
    assert len(keys) == len(set(keys)), "an SMS was sent twice"
    repo = EscalationRepository(db)
    for eid in ids:
        view = repo.get(eid)
        assert view.outcome == "exhausted"
        assert [(s.round, s.step) for s in view.steps] == list(STEPS), "a step is missing"
        for s in view.steps:
            key = step_key(eid, s.round, s.step)
            if s.state == "unknown":  # caught mid-send: it may have left, it is never sent again
                assert [r.node for r in gateway.of() if r.key == key] in ([], [A])
            else:
                assert s.state == "sent" and keys.count(key) == 1
        assert (view.steps[0].state == "unknown") == (eid == ids[1])
        assert [a.state for a in view.duty_alerts] == ["sent"]
        assert [r.to for r in gateway.of(B) if r.key == f"esc-{eid}-duty-0"] == [DUTY_SMS]
    # Whatever went out after the kill went out from node-b.
    assert {r.node for r in gateway.of() if r.at > killed_at + 0.5} == {B}
    assert leader(db)[2] == 2  # one change of hands


def test_a_paused_leader_is_fenced_out_and_once_resumed_writes_and_sends_nothing(cluster):
    db, gateway, start, log_path = cluster
    a, _b = two_nodes_a_leading(db, start)
    epoch_a = lease_of(db, A)[0]
    ids = start_chains(db, 3)
    until(lambda: {step_key(i, 0, 0) for i in ids} <= set(gateway.keys(A)), "step 0 of every chain at node-a")
    until(lambda: all(s == "sent" for *_, s in rows_of(db, A)), "node-a to record its sends")
    time.sleep(WAIT_S / 5)  # node-a now waits for the next steps: nothing in flight
    a.send_signal(signal.SIGSTOP)
    sent_by_a, rows_by_a = gateway.keys(A), rows_of(db, A)

    until(lambda: (leader(db) or (None,))[0] == B, "node-b to take the lead from the paused node-a")
    until(lambda: {step_key(i, 0, 1) for i in ids} <= set(gateway.keys(B)), "node-b to send the next steps")
    a.send_signal(signal.SIGCONT)  # its overdue timers fire, its lease has expired
    until(lambda: lease_of(db, A)[0] > epoch_a, "node-a to come back under a new epoch")
    until(lambda: all_ended(db, ids), "every chain to end")
    time.sleep(2 * RENEW_S)

    assert gateway.keys(A) == sent_by_a, "the fenced node sent an SMS"
    assert rows_of(db, A) == rows_by_a, "the fenced node wrote a step"
    assert leader(db)[0] == B
    assert "node node-a does not lead escalation any more" in log_path.read_text()
    keys = gateway.keys()
    assert len(keys) == len(set(keys))
    repo = EscalationRepository(db)
    for eid in ids:
        view = repo.get(eid)
        assert [(s.round, s.step, s.state) for s in view.steps] == [(*st, "sent") for st in STEPS]


def test_a_leader_stopped_cleanly_gives_up_the_lead_and_its_lease(cluster):
    db, gateway, start, _ = cluster
    a, _b = two_nodes_a_leading(db, start)
    a.send_signal(signal.SIGTERM)
    assert a.wait(30) == 0
    node, _, term = leader(db)
    assert node in (None, B)  # given up, and maybe taken by node-b already
    epoch, expires_at = lease_of(db, A)
    assert expires_at <= _now(db)
    until(lambda: (leader(db) or (None,))[0] == B, "node-b to take the lead")
    ids = start_chains(db, 1)
    until(lambda: step_key(ids[0], 0, 0) in gateway.keys(B), "node-b to run a new chain")
    assert gateway.keys(A) == []
