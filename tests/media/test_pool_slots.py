"""The pool counts a worker's call slots as its pjsua does: an ended leg's slot stays taken until
the worker says pjsua freed it (`slots_held`), so a third leg goes to a worker with room rather
than to one whose pjsua would refuse it (PJ_ETOOMANY). Fake reactor, no process."""

from __future__ import annotations

from callrouter.media import protocol as p
from callrouter.media.pool import MediaPool
from callrouter.media.settings import MediaSettings
from callrouter.media.slot_events import SlotsHeld
from tests.media.harness import Observer
from tests.media.test_pool_unit import FakeReactor, ready


def two_workers():
    reactor, observer = FakeReactor(), Observer()
    settings = MediaSettings(legs_wanted=8, workers_min=2, workers_max=2, spare_calls=1, sip_port_base=6000,
                             rtp_port_base=30000, rtp_ports_per_worker=100)
    pool = MediaPool(settings, observer, reactor=reactor, python="/usr/bin/python3")
    pool.startService()
    (_, t0), (_, t1) = reactor.spawned
    ready(t0, "w0", 6000)
    ready(t1, "w1", 6001)
    return pool, t0, t1


def test_an_ended_legs_slot_still_held_by_pjsua_is_counted_until_the_worker_frees_it():
    pool, t0, t1 = two_workers()
    t0.emit(p.IncomingCall(leg="w0-1-1", sip_call_id="c1", from_uri="<sip:a@x>", to_uri="<sip:b@y>", number="",
                           caller="", caller_name=""))
    pool.dial("w0", p.Dial(leg="sec-1", uri="sip:anne@127.0.0.1"))
    pool.dial("w0", p.Dial(leg="xfer-1", uri="sip:berthe@127.0.0.1"))
    t0.emit(SlotsHeld(held=1))          # sec-1 hung up: its BYE not answered yet
    t0.emit(p.LegEnded(leg="sec-1", code=200, by="local"))
    w0 = pool.slots()[0]
    assert (len(w0.legs), w0.held, w0.used) == (2, 1, 3)
    t0.emit(p.IncomingCall(leg="w0-1-2", sip_call_id="c2", from_uri="<sip:a@x>", to_uri="<sip:b@y>", number="",
                           caller="", caller_name=""))
    assert w0.used == 4
    # w0's pjsua has no slot left: the next leg for its caller goes to w1 (a relay joins them)
    pool.dial("w0", p.Dial(leg="sec-2", uri="sip:claire@127.0.0.1"))
    assert pool.worker_of("sec-2") == "w1"
    assert pool.pick() == "w1"
    t0.emit(SlotsHeld(held=0))          # pjsua freed it
    assert w0.used == 3
    pool.dial("w0", p.Dial(leg="sec-3", uri="sip:denise@127.0.0.1"))
    assert pool.worker_of("sec-3") == "w0"


def test_a_worker_gone_holds_no_slot_and_its_restart_starts_from_none():
    pool, t0, _ = two_workers()
    t0.emit(SlotsHeld(held=3))
    assert pool.slots()[0].used == 3
    t0.exit(9)
    assert pool.slots()[0].held == 0 and pool.slots()[0].used == 0


def test_the_status_and_the_slot_gauges_count_the_held_slots_used():
    from callrouter.media.pool_metrics import PoolMetrics
    from callrouter.metrics import Metrics

    pool, t0, _ = two_workers()
    t0.emit(SlotsHeld(held=2))
    assert [(s.name, s.legs, s.held) for s in pool.status()] == [("w0", 0, 2), ("w1", 0, 0)]
    metrics = Metrics()

    class NoBacklog:
        def pending(self) -> int:
            return 0

    PoolMetrics(pool, metrics, NoBacklog()).sample()
    assert metrics.call_slots.labels("used")._value.get() == 2
    assert metrics.call_slots.labels("free")._value.get() == 6
