"""The edge refuses new calls while the controller lags behind its calls, on a fake clock: turns of
the reactor longer than media.shed_lag_ms, LATE_TICKS in a row, start it; one long turn does not;
a lag under half of it for HOLD_S ends it."""

from __future__ import annotations

from twisted.internet import defer, task

from callrouter.media.overload import HOLD_S, LATE_TICKS, PERIOD_S, LagGuard
from callrouter.media.settings import MediaSettings


def guard(lag_s: float = 0.2) -> tuple[LagGuard, task.Clock, list[bool]]:
    clock, told = task.Clock(), []
    g = LagGuard(clock, lambda on: told.append(on) or defer.succeed(True), lag_s)
    g.start()
    return g, clock, told


def on_time(clock: task.Clock, ticks: int) -> None:
    for _ in range(ticks):
        clock.advance(PERIOD_S)


def test_the_edge_refuses_new_calls_while_the_controller_lags_and_takes_them_again_once_it_caught_up():
    g, clock, told = guard()
    on_time(clock, 20)
    assert told == [] and not g.shedding and g.lag_s < 0.001
    clock.advance(PERIOD_S + 0.3)  # one turn of 300 ms (a worker starting): nothing refused
    on_time(clock, 1)
    assert told == [] and not g.shedding
    for _ in range(LATE_TICKS):  # behind, turn after turn
        clock.advance(PERIOD_S + 0.3)
    assert told == [True] and g.shedding and abs(g.lag_s - 0.3) < 0.001
    clock.advance(PERIOD_S + 0.15)  # still behind by more than half the threshold: refused still
    on_time(clock, int(HOLD_S / PERIOD_S) - 2)
    assert told == [True] and g.shedding
    on_time(clock, 5)
    assert told == [True, False] and not g.shedding and g.episodes == 1
    for _ in range(LATE_TICKS):  # again
        clock.advance(PERIOD_S + 0.25)
    assert told == [True, False, True] and g.episodes == 2
    g.stop()
    assert clock.getDelayedCalls() == []


def test_a_lag_below_the_threshold_refuses_nothing():
    g, clock, told = guard(lag_s=0.2)
    for _ in range(50):
        clock.advance(PERIOD_S + 0.15)
    assert told == [] and not g.shedding and g.lag_max_s > 0.14


def test_off_by_default_the_lag_is_measured_and_nothing_refused():
    assert MediaSettings().shed_lag_ms == 0
    assert "shed_lag_ms" in " ".join(MediaSettings(shed_lag_ms=-1).problems())
    g, clock, told = guard(lag_s=0.0)
    for _ in range(20):
        clock.advance(PERIOD_S + 0.5)
    assert told == [] and not g.shedding and g.episodes == 0
    assert abs(g.take_lag_max() - 0.5) < 0.001 and g.take_lag_max() == 0.0  # a window each time
    g.stop()
    assert clock.getDelayedCalls() == []


def test_the_lag_window_holds_the_highest_lag_since_it_was_taken():
    g, clock, _ = guard()
    clock.advance(PERIOD_S + 0.12)
    on_time(clock, 3)
    assert abs(g.take_lag_max() - 0.12) < 0.001
    on_time(clock, 3)
    assert g.take_lag_max() < 0.001 and abs(g.lag_max_s - 0.12) < 0.001
