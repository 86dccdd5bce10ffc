"""The pool's plan (callrouter.media.sizing), pure: a table of cases, then properties over any pool."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.media.sizing import READY, RETIRING, REVIVABLE, STARTING, Sizing, WorkerView, floor_calls, plan

CAP = 4
S = Sizing(workers_min=1, workers_max=10, legs_wanted=4, spare_calls=4, arrival_lead_seconds=3.0,
           idle_retire_seconds=60.0)


def ready(index: int, legs: int = 0, idle_since: float | None = 0.0) -> WorkerView:
    return WorkerView(index, READY, CAP, legs, idle_since if legs == 0 else None)


def test_before_any_worker_reported_its_cap_the_minimum_starts():
    assert plan([], 0, 0.0, 0.0, None, S).start == 1


def test_spare_capacity_is_kept_ahead_of_the_traffic():
    # Two workers, 6 callers in menu and queue (one slot each): 2 free slots = 1 spare call;
    # 4 spare calls wanted -> 8 free slots -> 6 more legs: 2 workers.
    p = plan([ready(0, 4), ready(1, 2)], waiting=6, arrivals_per_s=0.0, now=0.0, cap=CAP, s=S)
    assert p.capacity.spare_calls == 1 and p.start == 2 and not p.at_max and p.admit


def test_workers_starting_count_as_the_slots_they_bring():
    workers = [ready(0, 4), ready(1, 2), *(WorkerView(i, STARTING, 0, 0) for i in (2, 3))]
    assert plan(workers, waiting=6, arrivals_per_s=0.0, now=0.0, cap=CAP, s=S).start == 0


def test_a_burst_raises_the_floor_to_the_calls_of_the_lead_time():
    assert floor_calls(S, arrivals_per_s=10.0) == 30
    p = plan([ready(0), ready(1)], waiting=0, arrivals_per_s=10.0, now=0.0, cap=CAP, s=S)
    assert p.capacity.floor == 30 and p.start == 8 and p.at_max  # 60 legs wanted, 10 workers at most


def test_retiring_workers_are_put_back_before_new_ones_start():
    workers = [ready(0, 4), WorkerView(1, REVIVABLE, CAP, 0), WorkerView(2, RETIRING, CAP, 0)]
    p = plan(workers, waiting=4, arrivals_per_s=0.0, now=0.0, cap=CAP, s=S)
    assert p.revive == (1,) and p.start == 1


def test_idle_workers_retire_highest_first_keeping_the_floor():
    workers = [ready(i, idle_since=0.0) for i in range(6)]
    p = plan(workers, waiting=0, arrivals_per_s=0.0, now=100.0, cap=CAP, s=S)
    # 24 free slots = 12 spare calls; floor 4: retire while the spare left stays >= 4.
    assert p.retire == (5, 4, 3, 2)


def test_nothing_retires_before_its_idle_period_nor_while_it_holds_a_call():
    workers = [ready(0), ready(1, 1), ready(2, idle_since=50.0), ready(3, idle_since=0.0), ready(4, idle_since=0.0)]
    assert plan(workers, waiting=0, arrivals_per_s=0.0, now=100.0, cap=CAP, s=S).retire == (4, 3)  # not 2, not 1


def test_at_workers_max_new_calls_are_refused_while_every_free_slot_is_a_callers():
    full = [ready(i, 3) for i in range(10)]  # 10 free slots, 10 callers waiting for a second leg
    p = plan(full, waiting=10, arrivals_per_s=0.0, now=0.0, cap=CAP, s=S)
    assert p.start == 0 and not p.admit
    assert plan(full, waiting=7, arrivals_per_s=0.0, now=0.0, cap=CAP, s=S).admit


views = st.lists(st.builds(WorkerView, index=st.just(0), state=st.sampled_from([READY, STARTING, REVIVABLE, RETIRING,
                                                                                  "down"]),
                           cap=st.just(CAP), legs=st.integers(0, CAP),
                           idle_since=st.one_of(st.none(), st.floats(0, 1000))), max_size=12)
sizings = st.builds(Sizing, workers_min=st.integers(1, 4), workers_max=st.integers(4, 12),
                    legs_wanted=st.integers(1, 40), spare_calls=st.integers(1, 12),
                    arrival_lead_seconds=st.floats(0, 5), idle_retire_seconds=st.floats(0, 300))


@settings(max_examples=400)
@given(views, st.integers(0, 30), st.floats(0, 50), st.floats(0, 2000), sizings)
def test_the_plan_keeps_its_promises(raw, waiting, rate, now, s):
    workers = [WorkerView(i, w.state, w.cap if w.state != STARTING else 0, w.legs if w.state != STARTING else 0,
                          w.idle_since) for i, w in enumerate(raw)]
    waiting = min(waiting, sum(w.legs for w in workers if w.state == READY))
    p = plan(workers, waiting, rate, now, CAP, s)
    running = sum(1 for w in workers if w.state != "down")
    assert running + p.start <= max(s.workers_max, running)
    by_index = {w.index: w for w in workers}
    assert all(by_index[i].state == REVIVABLE for i in p.revive)
    for i in p.retire:  # only idle ready workers, past their idle period
        w = by_index[i]
        assert w.state == READY and w.legs == 0 and now - w.idle_since >= s.idle_retire_seconds
    free = sum(w.cap - w.legs for w in workers if w.state == READY)
    starting = sum(1 for w in workers if w.state == STARTING) + p.start + len(p.revive)
    future = free + starting * CAP
    if not p.at_max:  # growth covers the floor
        assert future >= 2 * floor_calls(s, rate)
    if p.retire:
        left = free - CAP * len(p.retire)
        assert left // 2 >= floor_calls(s, rate)
        active = sum(1 for w in workers if w.state in (READY, STARTING)) - len(p.retire)
        assert active >= max(s.workers_min, math.ceil(s.legs_wanted / CAP))
    assert p.admit == (running + p.start < s.workers_max or future - waiting >= 2)


@pytest.mark.parametrize("arrivals", [0.0, 1.0, 100.0])
def test_the_floor_is_never_below_the_setting(arrivals):
    assert floor_calls(S, arrivals) >= S.spare_calls


def test_when_the_edge_sends_a_worker_two_callers_at_most_its_free_slots_are_not_room_for_callers():
    """sip.worker_max_calls 2: a worker with two callers has two free slots the edge will never fill
    with a new caller (they are her second legs' room): the pool grows for the callers to come."""
    s = Sizing(workers_min=1, workers_max=10, legs_wanted=4, spare_calls=2, callers_per_worker=2)
    two_each = [WorkerView(i, READY, CAP, 2, None, callers=2) for i in range(3)]
    p = plan(two_each, waiting=6, arrivals_per_s=0.0, now=0.0, cap=CAP, s=s)
    assert p.capacity.free_slots == 6 and p.capacity.spare_calls == 0 and p.start == 1
    free_for_callers = [*two_each, ready(3)]
    assert plan(free_for_callers, waiting=6, arrivals_per_s=0.0, now=0.0, cap=CAP, s=s).capacity.spare_calls == 2
