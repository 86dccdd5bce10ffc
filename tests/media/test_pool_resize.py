"""The pool following the load, on a fake reactor with a fake edge: workers added ahead of the
callers, idle ones retired only once the edge stopped sending them calls, put back when needed,
workers_max said and new calls held at the edge, legs placed where there is room and bridges
across workers made relays."""

from __future__ import annotations

import pytest
from twisted.internet import defer

from callrouter.media import protocol as p
from callrouter.media.pool import MediaPool
from callrouter.media.pool_metrics import PoolMetrics
from callrouter.media.pool_resize import REPLAN_S
from callrouter.media.settings import MediaSettings
from callrouter.metrics import Metrics
from tests.media.harness import Observer
from tests.media.test_pool_unit import FakeReactor, ready


class FakeEdge:
    """The edge's dispatcher: records each change; `answer` False makes it not answer."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.pending: list[tuple[str, int, defer.Deferred]] = []
        self.hold = False

    def _call(self, what: str, port: int) -> defer.Deferred:
        self.calls.append((what, port))
        if self.hold:
            d: defer.Deferred = defer.Deferred()
            self.pending.append((what, port, d))
            return d
        return defer.succeed(True)

    def activate(self, port: int) -> defer.Deferred:
        return self._call("activate", port)

    def deactivate(self, port: int) -> defer.Deferred:
        return self._call("deactivate", port)


class Backlog:
    def pending(self) -> int:
        return 0


def make(callers_per_worker=0, **overrides):
    reactor, observer, edge = FakeReactor(), Observer(), FakeEdge()
    values = dict(legs_wanted=4, workers_min=1, workers_max=6, spare_calls=2, arrival_lead_seconds=0,
                  idle_retire_seconds=60, retire_grace_seconds=1, sip_port_base=6000, rtp_port_base=30000,
                  rtp_ports_per_worker=100)
    values.update(overrides)
    pool = MediaPool(MediaSettings(**values), observer, reactor=reactor, python="/usr/bin/python3", edge=edge,
                     callers_per_worker=callers_per_worker)
    pool.startService()
    return pool, reactor, observer, edge


def all_ready(reactor) -> None:
    for i, (args, t) in enumerate(reactor.spawned):
        if t.proto is not None and not getattr(t, "_ready", False) and t.pid:
            name = args[args.index("--name") + 1]
            if not t.exited:
                t._ready = True
                ready(t, name, int(args[args.index("--sip-port") + 1]))


def transport(reactor, name):
    return next(t for args, t in reversed(reactor.spawned) if args[args.index("--name") + 1] == name)


def call(t, leg):
    t.emit(p.IncomingCall(leg=leg, sip_call_id=leg, from_uri="", to_uri="", number="1", caller="2"))


@pytest.fixture(autouse=True)
def exits(monkeypatch):
    """FakeTransport.exited: a process already reported ended."""
    from tests.media import test_pool_unit as unit

    original = unit.FakeTransport.exit

    def exit(self, code=None):
        self.exited = True
        original(self, code)

    monkeypatch.setattr(unit.FakeTransport, "exited", False, raising=False)
    monkeypatch.setattr(unit.FakeTransport, "exit", exit)


def test_workers_are_added_ahead_of_the_callers_and_activated_at_the_edge():
    pool, reactor, _, edge = make()
    all_ready(reactor)
    assert len(reactor.spawned) == 1           # 4 free slots: 2 spare calls, the floor
    w0 = transport(reactor, "w0")
    call(w0, "c1")                             # 3 free slots: 1 spare call (a caller and a second leg)
    reactor.advance(REPLAN_S)
    assert len(reactor.spawned) == 2           # added before the next callers come
    all_ready(reactor)
    assert ("activate", 6000) in edge.calls and ("activate", 6001) in edge.calls
    for leg in ("c2", "c3", "c4"):
        call(w0, leg)                          # w0 full of callers: one slot each, w1's 4 free
    reactor.advance(REPLAN_S)
    assert len(reactor.spawned) == 2 and pool.resizer.capacity.spare_calls == 2
    call(transport(reactor, "w1"), "c5")
    reactor.advance(REPLAN_S)
    all_ready(reactor)
    assert len(reactor.spawned) == 3 and pool.resizer.capacity.spare_calls >= 2


def test_an_idle_worker_leaves_the_edge_first_then_retires_and_is_not_restarted():
    pool, reactor, observer, edge = make(workers_min=1, legs_wanted=4, spare_calls=1)
    all_ready(reactor)
    w0 = transport(reactor, "w0")
    for leg in ("c1", "c2", "c3"):
        call(w0, leg)
    reactor.advance(REPLAN_S)
    all_ready(reactor)
    w1 = transport(reactor, "w1")
    for leg in ("c1", "c2", "c3"):
        w0.emit(p.LegEnded(leg=leg, code=200))
    swept = [("deactivate", port) for port in range(6001, 6006)]
    assert edge.calls[:6] == [("activate", 6000), *swept]   # the positions nobody holds yet
    reactor.advance(59)
    assert edge.calls[6:] == [("activate", 6001)]
    reactor.advance(2)                          # idle past idle_retire_seconds: the highest goes
    assert edge.calls[-1] == ("deactivate", 6001)
    assert pool.status()[1].state == "retiring" and p.Retire() not in w1.commands()
    reactor.advance(1)                          # the grace for calls already on their way
    assert w1.commands()[-1] == p.Retire()
    assert pool.pick() == "w0"                  # a retiring worker gets nothing new
    w1.exit(0)
    reactor.advance(100)
    assert pool.status()[1].state == "down" and len(reactor.spawned) == 2 and observer.lost == []


def test_a_call_that_reaches_a_retiring_worker_is_served_to_its_end():
    pool, reactor, observer, edge = make(workers_min=1, spare_calls=1)
    all_ready(reactor)
    w0 = transport(reactor, "w0")
    for leg in ("a", "b", "c"):
        call(w0, leg)
    reactor.advance(REPLAN_S)
    all_ready(reactor)
    for leg in ("a", "b", "c"):
        w0.emit(p.LegEnded(leg=leg, code=200))
    reactor.advance(61)
    w1 = transport(reactor, "w1")
    call(w1, "late")                             # dispatched before the edge took it out
    reactor.advance(1)
    assert w1.commands()[-1] == p.Retire()       # it refuses new calls from now on
    pool.send(p.Play(leg="late", path="/p.wav"))  # ... and still serves its own
    assert w1.commands()[-1] == p.Play(leg="late", path="/p.wav")
    assert observer.lost == [] and pool.worker_of("late") == "w1"


def test_if_the_edge_does_not_answer_the_worker_stays():
    pool, reactor, _, edge = make(workers_min=1, spare_calls=1)
    all_ready(reactor)
    w0 = transport(reactor, "w0")
    for leg in ("a", "b", "c"):
        call(w0, leg)
    reactor.advance(REPLAN_S)
    all_ready(reactor)
    for leg in ("a", "b", "c"):
        w0.emit(p.LegEnded(leg=leg, code=200))
    edge.hold = True
    reactor.advance(61)
    what, port, d = edge.pending[-1]
    assert (what, port) == ("deactivate", 6001)
    d.callback(False)
    reactor.advance(5)
    assert pool.status()[1].state == "ready" and p.Retire() not in transport(reactor, "w1").commands()


def test_a_retiring_worker_is_put_back_when_the_callers_come_back():
    pool, reactor, _, edge = make(workers_min=1, spare_calls=1, retire_grace_seconds=5)
    all_ready(reactor)
    w0 = transport(reactor, "w0")
    for leg in ("a", "b", "c"):
        call(w0, leg)
    reactor.advance(REPLAN_S)
    all_ready(reactor)
    for leg in ("a", "b", "c"):
        w0.emit(p.LegEnded(leg=leg, code=200))
    reactor.advance(61)
    assert pool.status()[1].state == "retiring"
    for leg in ("d", "e", "f"):
        call(w0, leg)
    reactor.advance(REPLAN_S)
    assert pool.status()[1].state == "ready" and edge.calls[-1] == ("activate", 6001)
    reactor.advance(10)
    assert p.Retire() not in transport(reactor, "w1").commands() and len(reactor.spawned) == 2


def test_workers_max_is_said_measured_and_new_calls_are_held_at_the_edge(caplog):
    pool, reactor, _, edge = make(workers_min=1, workers_max=2, spare_calls=1)
    metrics = Metrics()
    sampler = PoolMetrics(pool, metrics, Backlog())
    all_ready(reactor)
    w0 = transport(reactor, "w0")
    with caplog.at_level("ERROR", logger="callrouter.media.pool"):
        for leg in ("a", "b", "c"):
            call(w0, leg)
        reactor.advance(REPLAN_S)
        all_ready(reactor)
        w1 = transport(reactor, "w1")
        for leg in ("d", "e", "f"):
            call(w1, leg)
        reactor.advance(REPLAN_S)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors[0].startswith("media pool at media.workers_max (2 workers)")
    # 2 free slots and 6 callers who may each need one: no new caller until some are served.
    assert "new calls are refused at the edge" in errors[1]
    assert {("deactivate", 6000), ("deactivate", 6001)} <= set(edge.calls) and not pool.resizer.admitting
    sampler.sample()
    get = metrics.registry.get_sample_value
    assert get("callrouter_media_pool_at_max") == 1 and get("callrouter_media_workers_max_reached_total") == 1
    for leg in ("a", "b", "c", "d"):
        (w0 if leg in "abc" else w1).emit(p.LegEnded(leg=leg, code=200))
    reactor.advance(1)
    assert pool.resizer.admitting and edge.calls[-1][0] == "activate"
    assert len(caplog.records) == 2              # reached once, said once


def test_pick_leaves_the_room_callers_waiting_for_a_second_leg_need():
    pool, reactor, _, _ = make(workers_min=1, workers_max=1, spare_calls=1)
    all_ready(reactor)
    w0 = transport(reactor, "w0")
    call(w0, "a")
    call(w0, "b")
    assert pool.pick(legs=2) is None and pool.pick(legs=1) is None  # 2 free, both the callers'
    pool.send(p.Bridge(leg="a", other="b"))      # they are each other's second leg now
    assert pool.pick(legs=2) == "w0"


def test_a_full_workers_second_leg_goes_elsewhere_and_the_bridge_becomes_a_relay():
    pool, reactor, _, _ = make(workers_min=2, legs_wanted=8, spare_calls=1)
    all_ready(reactor)
    w0, w1 = transport(reactor, "w0"), transport(reactor, "w1")
    for leg in ("a", "b", "c", "d"):
        call(w0, leg)
    pool.dial("w0", p.Dial(leg="sec", uri="sip:s@127.0.0.1"))
    assert pool.worker_of("sec") == "w1" and w1.commands()[-1].leg == "sec"
    pool.send(p.Bridge(leg="a", other="sec"))
    relay_id = w0.commands()[-1].relay
    assert w0.commands()[-1] == p.RelayOpen(relay=relay_id, leg="a")
    assert w1.commands()[-1] == p.RelayOpen(relay=relay_id, leg="sec")
    record = p.RecordCall(leg="a", other="sec", recording="rec", path="/s/a.wav", other_path="/s/b.wav")
    pool.send(record)                             # the conversation is recorded once the relay is up
    assert w0.commands()[-1] == p.RelayOpen(relay=relay_id, leg="a")
    w0.emit(p.RelayReady(relay=relay_id, port=30098))
    w1.emit(p.RelayReady(relay=relay_id, port=30198))
    assert w0.commands()[-2:] == [p.RelayConnect(relay=relay_id, port=30198),
                                  p.RecordCall(leg="a", other=relay_id, recording="rec", path="/s/a.wav",
                                               other_path="/s/b.wav")]
    assert w1.commands()[-1] == p.RelayConnect(relay=relay_id, port=30098)
    w1.emit(p.RelayEnded(relay=relay_id, reason="leg_ended"))   # the secretary hung up
    w1.emit(p.LegEnded(leg="sec", code=200))
    assert w0.commands()[-1] == p.RelayClose(relay=relay_id)
    assert len(pool.relays) == 0


def test_a_dead_workers_relays_are_closed_on_the_other_side():
    pool, reactor, observer, _ = make(workers_min=2, legs_wanted=8, spare_calls=1)
    all_ready(reactor)
    w0, w1 = transport(reactor, "w0"), transport(reactor, "w1")
    call(w0, "a")
    pool.dial("w1", p.Dial(leg="sec", uri="sip:s@127.0.0.1"))
    pool.send(p.Bridge(leg="a", other="sec"))
    relay_id = w0.commands()[-1].relay
    w1.exit()
    assert w0.commands()[-1] == p.RelayClose(relay=relay_id)
    assert observer.lost == [("w1", "sec", "worker_lost")]


def test_with_the_edge_sending_two_callers_a_worker_the_pool_grows_for_the_callers():
    """sip.worker_max_calls 2 (the edge's old default): two callers fill a worker for the edge even
    though it has two free slots; the pool counts the room the edge will use."""
    pool, reactor, _, _ = make(callers_per_worker=2, spare_calls=1, workers_min=1)
    all_ready(reactor)
    w0 = transport(reactor, "w0")
    call(w0, "a")
    reactor.advance(REPLAN_S)
    assert len(reactor.spawned) == 1             # one caller more fits on w0
    call(w0, "b")
    reactor.advance(REPLAN_S)
    assert len(reactor.spawned) == 2 and pool.resizer.capacity.free_slots == 2
