"""The pool's supervision logic on a fake reactor: sizing from the cap, routing, restart backoff,
lost legs, ready timeout, stop. No process is started (see test_pool_workers for the real ones)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import error
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from callrouter.media import protocol as p
from callrouter.media.pool import WORKER_LOST, WORKER_STOPPED, MediaPool, NoSuchLeg
from callrouter.media.settings import MediaSettings
from tests.media.harness import Observer


class FakeTransport:
    def __init__(self, proto: Any, pid: int) -> None:
        self.proto, self.pid = proto, pid
        self.written: list[bytes] = []
        self.signals: list[str] = []
        self.stdin_closed = False
        proto.transport = self

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def closeStdin(self) -> None:
        self.stdin_closed = True

    def signalProcess(self, sig: str) -> None:
        self.signals.append(sig)

    # what the worker would do
    def emit(self, event: p.Event) -> None:
        self.proto.outReceived(p.encode(event))

    def exit(self, code: int | None = None) -> None:
        reason = error.ProcessTerminated(exitCode=code, signal=None if code is not None else 9)
        self.proto.processEnded(Failure(reason))

    def commands(self) -> list[p.Command]:
        return [p.decode_command(line) for line in self.written]


class FakeReactor(Clock):
    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[tuple[list[str], FakeTransport]] = []

    def spawnProcess(self, proto, executable, args, env=None, **kw):
        transport = FakeTransport(proto, pid=1000 + len(self.spawned))
        self.spawned.append((list(args), transport))
        return transport


def ready(transport: FakeTransport, name: str, port: int, cap: int = 4) -> None:
    transport.emit(p.Ready(worker=name, sip_port=port, cap=cap, pid=transport.pid))


@pytest.fixture
def setup():
    reactor, observer = FakeReactor(), Observer()
    settings = MediaSettings(legs_wanted=10, workers_min=1, spare_calls=1, sip_port_base=6000, rtp_port_base=30000,
                             rtp_ports_per_worker=100, restart_delay_seconds=1, restart_delay_max_seconds=8,
                             stable_after_seconds=60, ready_timeout_seconds=20)
    pool = MediaPool(settings, observer, reactor=reactor, python="/usr/bin/python3")
    pool.startService()
    return pool, reactor, observer


def test_pool_sizes_itself_from_the_cap_the_first_worker_reports(setup):
    pool, reactor, _ = setup
    assert len(reactor.spawned) == 1                       # workers_min, cap unknown yet
    args, t0 = reactor.spawned[0]
    assert args[args.index("--sip-port") + 1] == "6000" and args[args.index("--rtp-port") + 1] == "30000"
    ready(t0, "w0", 6000, cap=4)
    assert len(reactor.spawned) == 3                       # ceil(10 / 4)
    assert pool.sip_ports() == [6000, 6001, 6002]
    assert reactor.spawned[2][0][reactor.spawned[2][0].index("--rtp-port") + 1] == "30200"
    fired = []
    pool.when_ready().addCallback(fired.append)
    assert not fired
    ready(reactor.spawned[1][1], "w1", 6001)
    ready(reactor.spawned[2][1], "w2", 6002)
    assert [s.state for s in fired[0]] == ["ready"] * 3


def test_legs_are_tracked_commands_routed_and_the_least_loaded_worker_picked(setup):
    pool, reactor, observer = setup
    ready(reactor.spawned[0][1], "w0", 6000, cap=2)        # ceil(10/2) = 5 workers
    for i, (_, t) in enumerate(reactor.spawned[1:], 1):
        ready(t, f"w{i}", 6000 + i, cap=2)
    t0 = reactor.spawned[0][1]
    t0.emit(p.IncomingCall(leg="w0-1-1", sip_call_id="c", from_uri="", to_uri="", number="1", caller="2"))
    assert pool.worker_of("w0-1-1") == "w0" and observer.events[-1][0] == "w0"
    pool.send(p.Answer(leg="w0-1-1"))
    assert t0.commands() == [p.Answer(leg="w0-1-1")]
    assert pool.pick() == "w1"                              # w0 holds a leg, w1 is empty
    pool.dial("w0", p.Dial(leg="sec-1", uri="sip:s@127.0.0.1"))
    assert pool.worker_of("sec-1") == "w0" and pool.pick(legs=1) == "w1"
    with pytest.raises(ValueError):
        pool.dial("w1", p.Dial(leg="sec-1", uri="sip:s@127.0.0.1"))
    t0.emit(p.LegEnded(leg="sec-1", code=486, reason="Busy"))
    assert pool.worker_of("sec-1") is None
    with pytest.raises(NoSuchLeg):
        pool.send(p.Hangup(leg="sec-1"))


def test_a_worker_dying_at_start_a_thousand_times_is_still_restarted_at_the_longest_delay(setup):
    """The restart delay is Twisted's backoff policy: capped, never a float overflow however many
    quick deaths in a row."""
    pool, reactor, _ = setup
    for deaths in range(1, 1101):
        reactor.spawned[-1][1].exit(1)
        reactor.advance(7.9)
        assert len(reactor.spawned) == deaths + (deaths < 4)  # 1, 2, 4 s, then the 8 s cap
        reactor.advance(0.1)
        assert len(reactor.spawned) == deaths + 1
    assert pool.status()[0].state == "starting"


def test_a_dead_worker_loses_its_legs_only_and_restarts_with_backoff(setup):
    pool, reactor, observer = setup
    _, t0 = reactor.spawned[0]
    ready(t0, "w0", 6000)
    t1 = reactor.spawned[1][1]
    ready(t1, "w1", 6001)
    ready(reactor.spawned[2][1], "w2", 6002)
    for t, leg in ((t0, "w0-1-1"), (t0, "w0-1-2"), (t1, "w1-2-1")):
        t.emit(p.IncomingCall(leg=leg, sip_call_id=leg, from_uri="", to_uri="", number="1", caller="2"))
    t0.exit()                                              # SIGKILL
    assert sorted(observer.lost) == [("w0", "w0-1-1", WORKER_LOST), ("w0", "w0-1-2", WORKER_LOST)]
    assert pool.worker_of("w1-2-1") == "w1" and pool.pick() in ("w1", "w2")
    assert len(reactor.spawned) == 3
    reactor.advance(1)                                     # first restart after restart_delay
    assert len(reactor.spawned) == 4
    t0b = reactor.spawned[3][1]
    t0b.exit(1)                                            # dies again before ready
    reactor.advance(1.5)
    assert len(reactor.spawned) == 4                       # backoff: 2 s now
    reactor.advance(0.5)
    assert len(reactor.spawned) == 5
    t0c = reactor.spawned[4][1]
    ready(t0c, "w0", 6000)
    reactor.advance(61)                                    # stable for a while
    t0c.exit()
    reactor.advance(1)                                     # backoff reset to the first delay
    assert len(reactor.spawned) == 6


def test_a_worker_not_ready_in_time_is_killed(setup):
    pool, reactor, _ = setup
    _, t0 = reactor.spawned[0]
    reactor.advance(20)
    assert t0.signals == ["KILL"]


def test_stop_closes_stdin_then_kills_stragglers_and_reports_remaining_legs(setup):
    pool, reactor, observer = setup
    _, t0 = reactor.spawned[0]
    ready(t0, "w0", 6000)
    t0.emit(p.IncomingCall(leg="w0-1-1", sip_call_id="c", from_uri="", to_uri="", number="1", caller="2"))
    done = []
    pool.stopService().addCallback(done.append)
    assert all(t.stdin_closed for _, t in reactor.spawned)
    reactor.advance(5)
    assert all(t.signals == ["KILL"] for _, t in reactor.spawned)
    for _, t in reactor.spawned:
        t.exit()
    assert done and observer.lost == [("w0", "w0-1-1", WORKER_STOPPED)]
    reactor.advance(100)
    assert len(reactor.spawned) == 3                       # nothing restarted after stop


def test_bad_lines_from_a_worker_are_skipped(setup):
    pool, reactor, observer = setup
    _, t0 = reactor.spawned[0]
    t0.proto.outReceived(b"garbage\n{\"v\":1,\"type\":\"answer\",\"leg\":\"x\"}\n")
    ready(t0, "w0", 6000)
    assert [e.type for _, e in observer.events] == ["ready"]


def test_settings_problems_are_reported():
    assert MediaSettings().problems() == []
    bad = MediaSettings(legs_wanted=0, workers_min=0, rtp_ports_per_worker=7)
    assert len(bad.problems()) == 3
    with pytest.raises(ValueError, match="legs_wanted"):
        MediaPool(bad, Observer(), reactor=FakeReactor())


def test_legs_wanted_beyond_workers_max_is_logged_as_an_error_naming_both_settings(caplog):
    """400 legs of 4-leg workers would need 100 workers: the pool says so loudly, with the numbers,
    runs workers_max of them, and says it is held at workers_max."""
    reactor = FakeReactor()
    settings = MediaSettings(legs_wanted=400, workers_min=1, workers_max=3, sip_port_base=6000,
                             rtp_port_base=30000, rtp_ports_per_worker=400)
    pool = MediaPool(settings, Observer(), reactor=reactor, python="/usr/bin/python3")
    pool.startService()
    with caplog.at_level("ERROR", logger="callrouter.media.pool"):
        ready(reactor.spawned[0][1], "w0", 6000, cap=4)
    assert len(reactor.spawned) == 3
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "media.legs_wanted 400 needs 100 workers of 4 legs, above media.workers_max 3: running 3 workers "
        "(12 legs); raise media.workers_max or lower media.legs_wanted",
        "media pool at media.workers_max (3 workers): 2 spare call(s) of the 8 wanted ahead of the traffic; "
        "raise media.workers_max or add a node"]
    assert pool.resizer.at_max and pool.resizer.at_max_episodes == 1


def test_legs_wanted_within_workers_max_logs_no_error(setup, caplog):
    pool, reactor, _ = setup
    with caplog.at_level("ERROR", logger="callrouter.media.pool"):
        ready(reactor.spawned[0][1], "w0", 6000, cap=4)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_legs_wanted_no_cap_could_serve_is_refused_at_load():
    """More legs than workers_max workers have RTP port pairs for: refused when the settings load,
    the message naming the settings and the numbers."""
    from callrouter.config import ConfigError, parse_settings

    with pytest.raises(ConfigError) as caught:
        parse_settings({"media": {"legs_wanted": 400, "workers_max": 2, "rtp_ports_per_worker": 100}},
                       "test.yaml", environ={})
    assert any("legs_wanted 400 is more than workers_max 2 workers can ever hold" in problem
               and "100 legs at most" in problem for problem in caught.value.problems), caught.value.problems


def test_a_relay_reported_by_both_ends_is_known_again_and_its_id_never_reused():
    """After a takeover, the two ends of relay x7 reported by their workers make the relay known
    (an unbridge of its legs closes both ends); the next relay is x8 or later."""
    from types import SimpleNamespace

    from callrouter.media.relays import RelayBook

    w0, w1 = SimpleNamespace(name="w0"), SimpleNamespace(name="w1")
    written = []
    book = RelayBook(lambda slot, command: written.append((slot.name, command)))
    book.adopt(w0, "x7", "a")
    assert len(book) == 0
    book.adopt(w1, "x7", "b")
    assert len(book) == 1 and book.of_pair("b", "a") == "x7"
    assert book.bridge(w0, "c", w1, "d") == "x8"
    book.close("x7")
    assert ("w0", p.RelayClose(relay="x7")) in written and ("w1", p.RelayClose(relay="x7")) in written


class FakeLink:
    """The media service's channel as the pool uses it: the workers it already runs, attached."""

    def __init__(self, workers) -> None:
        self.workers, self.spawned, self.attached = workers, [], {}

    def connect(self):
        from twisted.internet import defer

        return defer.succeed(self.workers)

    def attach(self, worker, proto):
        self.attached[worker.worker] = FakeTransport(proto, worker.pid)
        return self.attached[worker.worker]

    def spawnProcess(self, proto, executable, args, env=None, **kw):
        self.spawned.append(list(args))
        return FakeTransport(proto, pid=0)

    def close(self) -> None:
        pass


def test_a_new_pool_takes_over_the_running_workers_and_asks_each_for_its_legs():
    """Both workers the media service holds keep their positions (none started in their place),
    are ready with their own pids, are asked for their legs; the pool is ready once both are, and
    its legs are those reported; stopping it (keep_workers) leaves them running."""
    from callrouter.media.channel import LiveWorker

    reactor, observer = FakeReactor(), Observer()
    settings = MediaSettings(legs_wanted=8, workers_min=2, workers_max=2, spare_calls=1, sip_port_base=6000,
                             rtp_port_base=30000, rtp_ports_per_worker=100)
    workers = [LiveWorker(f"w{i}", 500 + i, (), p.encode(p.Ready(worker=f"w{i}", sip_port=6000 + i, cap=4,
                                                                  pid=500 + i)).rstrip()) for i in range(2)]
    link = FakeLink(workers)
    pool = MediaPool(settings, observer, reactor=reactor, link=link, keep_workers=True)
    ready = pool.when_ready()
    pool.startService()
    assert link.spawned == [] and pool.taken_over == ["w0", "w1"]
    assert [(s.name, s.state, s.pid) for s in pool.status()] == [("w0", "ready", 500), ("w1", "ready", 501)]
    assert all(t.commands() == [p.ReportLegs()] for t in link.attached.values())
    assert ready.called
    link.attached["w1"].emit(p.LegReport(leg="w1-501-3", sip_call_id="c", peer="<sip:x@y>", outgoing=False,
                                         state="confirmed"))
    assert pool.worker_of("w1-501-3") == "w1" and pool.waiting() == 1
    pool.stopService()
    assert not any(t.stdin_closed for t in link.attached.values())
