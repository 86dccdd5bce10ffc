"""What a node believes of its lease (callrouter.cluster.lease): pure, every time an argument.

The property that matters: whatever the delays of the database and of its answers, and whatever
renewals fail, the node never believes it holds its lease at an instant the database would already
let another node take over."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.cluster import lease
from callrouter.cluster.lease import EXPIRED, RENEWED, SUPERSEDED, LeaseTiming, NodeState, Phase

TIMING = LeaseTiming(lease_s=10.0, renew_s=2.0)


def test_a_new_node_acquires_then_renews_and_an_out_node_asks_nothing():
    assert NodeState().due() == lease.ACQUIRE
    held = lease.acquired(NodeState(), 3, 100.0, TIMING)
    assert (held.phase, held.epoch, held.due()) == (Phase.HELD, 3, lease.RENEW)
    assert held.holds(100.0) and held.holds(109.7) and not held.holds(109.8)
    assert NodeState(Phase.OUT).due() is None


def test_a_renewal_extends_the_belief_from_when_it_was_sent_never_backwards():
    held = lease.acquired(NodeState(), 1, 100.0, TIMING)
    later = lease.renewed(held, RENEWED, 104.0, TIMING)
    assert later.until == pytest.approx(104.0 + 10.0 - TIMING.margin_s)
    assert lease.renewed(later, RENEWED, 90.0, TIMING).until == later.until


@pytest.mark.parametrize("outcome, phase, why", [
    (EXPIRED, Phase.JOINING, "the lease expired before it was renewed"),
    (SUPERSEDED, Phase.OUT, "a newer process took this node's name"),
])
def test_a_refused_renewal_drops_the_lease(outcome, phase, why):
    held = lease.acquired(NodeState(), 1, 100.0, TIMING)
    after = lease.renewed(held, outcome, 101.0, TIMING)
    assert (after.phase, after.epoch, after.why) == (phase, None, why)
    assert not after.holds(101.0)


def test_an_out_node_never_comes_back():
    out = NodeState(Phase.OUT, why="a newer process took this node's name")
    assert lease.acquired(out, 9, 100.0, TIMING) == out
    assert lease.renewed(out, RENEWED, 100.0, TIMING) == out


@pytest.mark.parametrize("after, now, why", [
    (lease.acquired(NodeState(), 1, 100.0, TIMING), 105.0, None),                      # still held
    (lease.acquired(NodeState(), 1, 100.0, TIMING), 120.0, "not renewed in time"),     # ran out
    (NodeState(why="the lease expired before it was renewed"), 105.0, "the lease expired before it was renewed"),
    (lease.acquired(NodeState(), 2, 100.0, TIMING), 105.0, "lost"),                    # another epoch
])
def test_a_loss_is_told_with_its_reason(after, now, why):
    assert lease.loss(1, after, now) == why
    assert lease.loss(None, after, now) is None  # it held nothing: nothing lost


# --- the safety property -----------------------------------------------------------------------

renewal = st.tuples(
    st.floats(0.0, 12.0),   # the wait since the previous answer before the next tick sends
    st.floats(0.0, 15.0),   # the database's delay before it executes the renewal
    st.floats(0.0, 15.0),   # the delay of its answer
    st.booleans(),          # the database reached at all
)


@settings(max_examples=300, deadline=None)
@given(st.lists(renewal, max_size=25), st.floats(0.5, 60.0))
def test_the_node_never_believes_it_holds_a_lease_the_database_has_let_go(renewals, lease_s):
    timing = LeaseTiming(lease_s, lease_s / 5)
    db_expiry, t = lease_s, 0.0   # acquired at 0, executed at once by the database
    state = lease.acquired(NodeState(), 1, 0.0, timing)
    checks = []                   # (instant, did the node believe it held the lease)
    for gap, db_delay, answer_delay, reached in renewals:
        sent = t + gap
        checks += [(sent, state.holds(sent), db_expiry)]
        if reached:
            executed = sent + db_delay
            outcome = RENEWED if executed < db_expiry else EXPIRED
            if outcome == RENEWED:
                db_expiry = executed + lease_s
            t = executed + answer_delay
            checks += [(t - 1e-9, state.holds(t - 1e-9), db_expiry)]
            state = lease.renewed(state, outcome, sent, timing)
        else:
            t = sent + answer_delay
        checks += [(t, state.holds(t), db_expiry)]
        if state.phase is not Phase.HELD:
            break
    for instant, held, expiry in checks:
        assert not held or instant < expiry


@given(st.lists(st.sampled_from([RENEWED, EXPIRED, SUPERSEDED]), max_size=10),
       st.lists(st.floats(0, 100), min_size=10, max_size=10))
def test_once_out_a_node_stays_out(outcomes, times):
    state = lease.renewed(lease.acquired(NodeState(), 1, 0.0, TIMING), SUPERSEDED, 0.0, TIMING)
    for outcome, when in zip(outcomes, times):
        state = lease.acquired(lease.renewed(state, outcome, when, TIMING), 2, when, TIMING)
        assert state.phase is Phase.OUT and not state.holds(when)


def test_the_margin_keeps_a_belief_shorter_than_the_lease():
    for lease_s in (0.5, 3.0, 10.0, 300.0):
        timing = LeaseTiming(lease_s, lease_s / 5)
        assert 0 < timing.margin_s < lease_s
        assert timing.believed_until(0.0) < lease_s
    assert NodeState().until == -math.inf
