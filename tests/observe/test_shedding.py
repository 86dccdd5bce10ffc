"""The controller's lag and the calls refused for it, as the metrics show them: a real LagGuard on a
fake clock, the edge's count of refused calls (read over its RPC in tests/sip/test_sip_routing.py)
given as a function here."""

from __future__ import annotations

from twisted.internet import defer, task

from callrouter.media.overload import LATE_TICKS, PERIOD_S, LagGuard
from callrouter.metrics import Metrics
from callrouter.observe.shedding import ShedSampler


class Edge:
    """The edge's count of refused calls, and the RPCs made to read it."""

    def __init__(self) -> None:
        self.count, self.reads = 0, 0
        self.down = False

    def refused(self) -> defer.Deferred:
        self.reads += 1
        return defer.succeed(None if self.down else self.count)


def value(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


def setup(lag_s: float = 0.2):
    clock, metrics, edge = task.Clock(), Metrics(), Edge()
    guard = LagGuard(clock, lambda on: defer.succeed(True), lag_s)
    guard.start()
    sampler = ShedSampler(lambda: guard, metrics, edge.refused)
    return clock, metrics, edge, guard, sampler


def test_an_episode_shows_as_shedding_counted_once_with_the_calls_the_edge_refused():
    clock, metrics, edge, guard, sampler = setup()
    sampler.sample()  # the edge's count when the controller starts: not ours to count
    edge.count = 7
    for _ in range(LATE_TICKS):
        clock.advance(PERIOD_S + 0.3)
    edge.count += 40  # refused meanwhile
    sampler.sample()
    assert value(metrics, "callrouter_media_shedding") == 1
    assert value(metrics, "callrouter_media_shed_episodes_total") == 1
    assert abs(value(metrics, "callrouter_controller_lag_seconds") - 0.3) < 0.001
    assert value(metrics, "callrouter_media_calls_shed_total") == 47
    for _ in range(40):  # caught up: the episode ends
        clock.advance(PERIOD_S)
    edge.count += 3  # refused in its last second
    sampler.sample()
    sampler.sample()
    assert not guard.shedding and value(metrics, "callrouter_media_shedding") == 0
    assert value(metrics, "callrouter_media_calls_shed_total") == 50
    assert value(metrics, "callrouter_controller_lag_seconds") < 0.001
    reads = edge.reads
    for _ in range(5):
        for _ in range(int(1.0 / PERIOD_S)):
            clock.advance(PERIOD_S)
        sampler.sample()
    assert edge.reads == reads  # no RPC while nothing is refused
    assert value(metrics, "callrouter_media_shed_episodes_total") == 1


def test_an_edge_that_does_not_answer_is_read_again_and_a_restarted_edge_counts_from_zero():
    clock, metrics, edge, guard, sampler = setup()
    sampler.sample()
    for _ in range(LATE_TICKS):
        clock.advance(PERIOD_S + 0.3)
    edge.down = True
    sampler.sample()
    assert value(metrics, "callrouter_media_calls_shed_total") == 0
    for _ in range(40):
        clock.advance(PERIOD_S)
    edge.down, edge.count = False, 12
    sampler.sample()  # the episode ended, but the count was not read yet: it is now
    assert not guard.shedding and value(metrics, "callrouter_media_calls_shed_total") == 12
    for _ in range(LATE_TICKS):
        clock.advance(PERIOD_S + 0.3)
    edge.count = 5  # the edge restarted meanwhile: 5 since
    sampler.sample()
    assert value(metrics, "callrouter_media_calls_shed_total") == 17
    assert value(metrics, "callrouter_media_shed_episodes_total") == 2


def test_with_shedding_off_the_lag_is_still_shown_and_nothing_is_read_from_the_edge():
    clock, metrics, edge, guard, sampler = setup(lag_s=0.0)
    sampler.sample()
    reads = edge.reads
    for _ in range(10):
        clock.advance(PERIOD_S + 0.4)
    sampler.sample()
    assert abs(value(metrics, "callrouter_controller_lag_seconds") - 0.4) < 0.001
    assert value(metrics, "callrouter_media_shedding") == 0 and edge.reads == reads
