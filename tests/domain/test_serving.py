"""The serving order (callrouter.domain.serving): which waiting call goes to which secretary.
Pure: plain records and `now` in, the choice out."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from callrouter.domain.serving import SECRETARY_STATES, Secretary, Waiting, choose, next_offer, order

PARIS = ZoneInfo("Europe/Paris")
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)


def sec(name: str, idle: float = 0.0, **kw) -> Secretary:
    return Secretary(f"sip:{name}@192.0.2.1", idle_since=idle, **kw)


def waiting(name: str, priority: int = 1, at: float = 0.0, seq: int = 0, strategy: str = "longest_idle") -> Waiting:
    return Waiting(name, "cab", "general", priority, at, seq, strategy=strategy, zone=PARIS)


def test_priority_first_then_the_longest_waiting_then_arrival():
    calls = [waiting("late", at=20, seq=2), waiting("urgent", priority=5, at=30, seq=3),
             waiting("early", at=10, seq=1), waiting("tie", at=10, seq=0)]
    assert [w.session for w in sorted(calls, key=order)] == ["urgent", "tie", "early", "late"]


@pytest.mark.parametrize("strategy, expected", [
    ("longest_idle", ["b"]),
    ("ring_all", ["b", "a", "c"]),
    ("skill", ["c"]),
    ("fewest_calls", ["a"]),
])
def test_each_strategy_picks_its_secretaries(strategy, expected):
    a = sec("a", idle=20, answers={"x": NOW - dt.timedelta(days=1)})  # yesterday's call does not count
    b = sec("b", idle=10, answers={"y": NOW})
    c = sec("c", idle=30, levels={"cab": 3}, answers={"z": NOW})
    chosen = choose(waiting("w", strategy=strategy), [a, b, c], NOW)
    assert [s.uri.split("@")[0][4:] for s in chosen] == expected


def test_ties_end_on_the_secretarys_identifier():
    assert [s.uri for s in choose(waiting("w"), [sec("b"), sec("a")], NOW)] == ["sip:a@192.0.2.1"]


def test_the_first_call_someone_free_covers_is_offered_to_someone_not_yet_tried():
    busy, away, tried, free = sec("busy", activity="on_call"), sec("away", paused="pause"), sec("tried"), sec("free", 5)
    first, second = waiting("first", seq=0), waiting("second", seq=1)
    cover = {"first": [busy, away], "second": [tried, free]}
    w, who = next_offer([second, first], lambda w: cover[w.session], {"second": {tried.uri}}, NOW)
    assert w is second and who == [free]
    assert next_offer([first], lambda w: cover[w.session], None, NOW) is None


def test_every_state_a_secretary_shows_is_a_known_state():
    shown = {sec("a").state, sec("b", paused="x").state, sec("c", logged_in=False).state,
             sec("d", activity="ringing").state, sec("e", activity="wrap_up").state,
             sec("f", activity="on_call").state}
    assert shown == set(SECRETARY_STATES)
