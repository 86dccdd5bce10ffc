"""The worker's loop with a real worker process: a command is executed as it arrives, and an idle
worker sleeps (no timer, no conference clock) until something comes.

That nothing polls is proven by counting, not timing: an idle worker does not wake at all (a
polling loop wakes 50 to 100 times a second). The latencies of a command and of a digit are
measured and written in the test's output, not held to a bound (a loaded machine would fail it);
the benchmark (`make bench`, bench/results/) holds the speed targets.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import pytest

from callrouter.media import protocol as p
from tests.media.harness import SIPP, RawSipCaller, RtpSink, Sipp, WorkerProc

pytestmark = [pytest.mark.integration,
              pytest.mark.needs(SIPP is None, reason="SIPp (Debian sip-tester) is not installed")]

CALLER = "+33612345678"


def switches(pid: int) -> int:
    """Context switches of every thread of `pid`: how often it woke up."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def wakeups_per_second(pid: int, seconds: float = 2.0) -> float:
    before = switches(pid)
    time.sleep(seconds)
    return (switches(pid) - before) / seconds


@pytest.fixture
def worker():
    w = WorkerProc()
    yield w
    assert w.stop() == 0, "".join(w.stderr_lines[-30:])


def test_an_answer_goes_out_as_soon_as_the_command_arrives(worker):
    """The `answer` command gets its 200 OK out, eight times over (from the command written to the
    200 received: about 1 ms on a quiet machine, where a loop looking at its commands every 20 ms
    took 10-20 ms)."""
    delays = []
    for _ in range(8):
        caller = RawSipCaller(("127.0.0.1", worker.sip_port))
        try:
            caller.invite("+33142000001", CALLER)
            call = worker.expect(p.IncomingCall)
            time.sleep(0.05)  # the worker is back asleep, its legs up
            sent = time.monotonic()
            worker.send(p.Answer(leg=call.leg))
            status, headers = caller.final()
            delays.append(time.monotonic() - sent)
            assert status == 200
            caller.ack(status, headers)
            worker.expect(p.LegState, leg=call.leg, state="confirmed")
            assert caller.bye() == 200
            worker.expect(p.LegEnded, leg=call.leg)
        finally:
            caller.close()
    print(f"answer -> 200 OK: median {statistics.median(delays) * 1000:.2f} ms of {len(delays)}")


def test_a_digit_is_reported_as_soon_as_it_arrives(worker):
    """RFC 4733 digits sent to a worker asleep are each reported, in order (within about 1 ms of
    their first packet on a quiet machine: printed, not held to a bound)."""
    sink = RtpSink()
    caller = RawSipCaller(("127.0.0.1", worker.sip_port))
    try:
        caller.invite("+33142000001", CALLER, rtp_port=sink.port, digits=True)
        call = worker.expect(p.IncomingCall)
        worker.send(p.Answer(leg=call.leg))
        status, headers = caller.final()
        caller.ack(status, headers)
        worker.expect(p.LegState, leg=call.leg, state="confirmed")
        port = int(re.search(rb"m=audio (\d+)", caller.last_body).group(1))
        delays = []
        for n, digit in enumerate("123456"):
            time.sleep(0.15)  # the worker is back asleep
            sent = time.monotonic()
            sink.send_digit(("127.0.0.1", port), int(digit), seq=100 + n * 10, timestamp=8000 * (n + 1))
            assert worker.expect(p.Digit, leg=call.leg).digit == digit
            delays.append(time.monotonic() - sent)
        print(f"digit -> report: median {statistics.median(delays) * 1000:.2f} ms of {len(delays)}")
        assert caller.bye() == 200
        worker.expect(p.LegEnded, leg=call.leg)
    finally:
        caller.close()
        sink.close()


def test_an_idle_worker_sleeps_and_its_conference_clock_runs_only_during_a_call(worker, tmp_path):
    pid = worker.proc.pid
    time.sleep(0.5)
    idle_threads = threads(pid)
    assert wakeups_per_second(pid) < 3  # was about 160 (a 10 Hz loop, a 100 Hz media poll, a 50 Hz clock)
    sink = RtpSink()
    try:
        sipp = Sipp("caller_wait_bye.xml", remote_port=worker.sip_port,
                    variables={"rtp_port": str(sink.port), "caller": CALLER}, workdir=tmp_path)
        call = worker.expect(p.IncomingCall)
        worker.send(p.Answer(leg=call.leg))
        worker.expect(p.LegState, leg=call.leg, state="confirmed")
        deadline = time.monotonic() + 5
        while threads(pid) <= idle_threads and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threads(pid) == idle_threads + 1  # the conference clock, with the call's audio
        worker.send(p.Hangup(leg=call.leg))
        worker.expect(p.LegEnded, leg=call.leg)
        assert sipp.wait(timeout=30) == 0, sipp.errors()
        deadline = time.monotonic() + 5
        while threads(pid) > idle_threads and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threads(pid) == idle_threads  # stopped once the bridge let go of the call
        time.sleep(0.5)
        assert wakeups_per_second(pid) < 3
    finally:
        sink.close()
