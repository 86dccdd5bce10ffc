"""Relays between two real worker processes: a caller on one, her secretary dialled on the other,
their audio joined both ways over loopback RTP without a call slot, and the relay gone with its leg.
"""

from __future__ import annotations

import time

import pytest

from callrouter.media import protocol as p
from tests.media.harness import SIPP, RtpSink, Sipp, WorkerProc
from tests.media.test_worker_sipp import _wait_for_source, alaw_tone, answer_next_call

pytestmark = [pytest.mark.integration,
              pytest.mark.needs(SIPP is None, reason="SIPp (Debian sip-tester) is not installed")]

CALLER = "+33612345678"


@pytest.fixture
def workers():
    a, b = WorkerProc(name="ra"), WorkerProc(name="rb")
    yield a, b
    for w in (a, b):
        assert w.stop() == 0, "".join(w.stderr_lines[-30:])


@pytest.fixture
def sinks():
    made: list[RtpSink] = []

    def make() -> RtpSink:
        made.append(RtpSink())
        return made[-1]

    yield make
    for sink in made:
        sink.close()


def relay(a: WorkerProc, a_leg: str, b: WorkerProc, b_leg: str, relay_id: str = "r1") -> None:
    """What the pool does for a bridge across two workers."""
    a.send(p.RelayOpen(relay=relay_id, leg=a_leg))
    b.send(p.RelayOpen(relay=relay_id, leg=b_leg))
    port_a = a.expect(p.RelayReady, relay=relay_id).port
    port_b = b.expect(p.RelayReady, relay=relay_id).port
    a.send(p.RelayConnect(relay=relay_id, port=port_b))
    b.send(p.RelayConnect(relay=relay_id, port=port_a))


def test_a_relay_joins_a_caller_and_a_secretary_on_two_workers_both_ways(workers, sinks, tmp_path):
    a, b = workers
    caller_rtp, secretary_rtp = sinks(), sinks()
    secretary = Sipp("uas_secretary.xml", variables={"rtp_port": str(secretary_rtp.port)}, workdir=tmp_path)
    caller = Sipp("caller_wait_bye.xml", remote_port=a.sip_port,
                  variables={"rtp_port": str(caller_rtp.port), "caller": CALLER}, workdir=tmp_path)
    call = answer_next_call(a)
    b.send(p.Dial(leg="sec-1", uri=f"sip:secretary@127.0.0.1:{secretary.port}",
                      display_name="Cabinet Exemple", headers={"X-Callrouter-Call": "call-42"}))
    b.expect(p.LegState, leg="sec-1", state="confirmed")
    relay(a, call.leg, b, "sec-1")
    _wait_for_source(caller_rtp)
    _wait_for_source(secretary_rtp)
    caller_rtp.send_rtp(next(iter(caller_rtp.sources)), alaw_tone(), count=50)
    assert secretary_rtp.wait_audible(20) >= 20, "the caller's voice did not reach the other worker's leg"
    secretary_rtp.send_rtp(next(iter(secretary_rtp.sources)), alaw_tone(), count=50)
    assert caller_rtp.wait_audible(20) >= 20, "the secretary's voice did not come back to the caller"
    assert not [e for w in (a, b) for e in w.seen if isinstance(e, p.Error)]
    # The secretary hangs up: her worker closes its end and says so; the pool closes the other.
    b.send(p.Hangup(leg="sec-1"))
    b.expect(p.LegEnded, leg="sec-1")
    assert [(e.relay, e.reason) for e in b.seen if isinstance(e, p.RelayEnded)] == [("r1", "leg_ended")]
    a.send(p.RelayClose(relay="r1"))
    heard = caller_rtp.audible()
    time.sleep(0.5)
    a.send(p.Hangup(leg=call.leg))
    a.expect(p.LegEnded, leg=call.leg)
    assert caller_rtp.audible() - heard < 5, "audio kept coming after the relay closed"
    assert secretary.wait() == 0, secretary.errors()
    assert caller.wait() == 0, caller.errors()


def test_relays_take_no_call_slot_and_close_cleanly_many_times(workers, sinks, tmp_path):
    """A full worker (every slot a caller) still joins each of its callers to a leg elsewhere; a
    hundred relays opened and closed, and more at once than a worker holds (refused, not a
    crash), leave both workers serving."""
    a, b = workers
    cap = a.ready.cap
    caller_rtp = sinks()
    callers = Sipp("caller_wait_bye.xml", remote_port=a.sip_port, calls=cap,
                   variables={"rtp_port": str(caller_rtp.port), "caller": CALLER}, workdir=tmp_path)
    legs = [answer_next_call(a).leg for _ in range(cap)]
    secretary_rtp = sinks()
    secretary = Sipp("uas_secretary.xml", variables={"rtp_port": str(secretary_rtp.port)}, workdir=tmp_path)
    b.send(p.Dial(leg="sec-x", uri=f"sip:secretary@127.0.0.1:{secretary.port}",
                      display_name="Cabinet Exemple", headers={"X-Callrouter-Call": "call-42"}))
    b.expect(p.LegState, leg="sec-x", state="confirmed")
    for n in range(100):
        relay(a, legs[n % cap], b, "sec-x", relay_id=f"r{n}")
        a.send(p.RelayClose(relay=f"r{n}"))
        b.send(p.RelayClose(relay=f"r{n}"))
        if n % 4 == 3:
            time.sleep(0.3)  # the closed relays' sockets go once the bridge let go of them
    assert not [e for w in (a, b) for e in w.seen if isinstance(e, p.Error)]
    time.sleep(1.0)
    for n in range(20):
        a.send(p.RelayOpen(relay=f"many{n}", leg=legs[n % cap]))
    refused = [a.expect(p.Error, command="relay_open") for _ in range(20 - 16)]
    assert all("16 relays" in e.message for e in refused)
    for n in range(20):
        a.send(p.RelayClose(relay=f"many{n}"))
    time.sleep(1.0)
    relay(a, legs[0], b, "sec-x", relay_id="last")
    _wait_for_source(secretary_rtp)
    secretary_rtp.send_rtp(next(iter(secretary_rtp.sources)), alaw_tone(), count=50)
    assert caller_rtp.wait_audible(20) >= 20, "a full worker's caller did not hear the other worker's leg"
    b.send(p.Hangup(leg="sec-x"))
    for leg in legs:
        a.send(p.Hangup(leg=leg))
    for leg in legs:
        a.expect(p.LegEnded, leg=leg)
    assert [e.relay for e in a.seen if isinstance(e, p.RelayEnded)] == ["last"]
    assert callers.wait() == 0, callers.errors()
    assert secretary.wait() == 0, secretary.errors()


def test_a_conversation_joined_by_a_relay_is_recorded_both_sides_on_the_callers_worker(workers, sinks, tmp_path):
    """record_call with the relay as the other leg: the caller's worker records her voice and what
    comes through the relay (the secretary's) apart, on its one clock; the secretary's hang-up (the
    relay closing) ends the recording."""
    from tests.recording.tones import CALLER_HZ, SECRETARY_HZ, caller_with_tone, channels, secretary_with_tone
    from tests.recording.tones import tone_frames

    a, b = workers
    caller_rtp, secretary_rtp = sinks(), sinks()
    secretary = Sipp(str(secretary_with_tone(tmp_path, "secretary", [("pause", 1500), ("tone", (SECRETARY_HZ, 3000)),
                                                                       ("pause", 500)])),
                     variables={"rtp_port": str(secretary_rtp.port)}, workdir=tmp_path, timeout_s=60)
    caller = Sipp(str(caller_with_tone(tmp_path, "caller", [("pause", 200), ("tone", (CALLER_HZ, 3000))])),
                  remote_port=a.sip_port, variables={"rtp_port": str(caller_rtp.port), "caller": CALLER},
                  workdir=tmp_path, timeout_s=60)
    call = a.expect(p.IncomingCall)
    a.send(p.Answer(leg=call.leg))
    a.expect(p.LegState, leg=call.leg, state="confirmed")
    b.send(p.Dial(leg="sec-1", uri=f"sip:secretary@127.0.0.1:{secretary.port}"))
    b.expect(p.LegState, leg="sec-1", state="confirmed")
    relay(a, call.leg, b, "sec-1")
    time.sleep(0.1)
    left, right = tmp_path / "spool" / "a.wav", tmp_path / "spool" / "b.wav"
    a.send(p.RecordCall(leg=call.leg, other="r1", recording="rec-1", path=str(left), other_path=str(right)))
    b.expect(p.LegEnded, leg="sec-1")            # the secretary hangs up after her tone
    a.send(p.RelayClose(relay="r1"))              # the pool closes the caller's end
    done = a.expect(p.CallRecordingFinished, leg="rec-1")
    assert done.reason == "leg_ended" and 4.0 < done.duration < 8.0
    a.send(p.Hangup(leg=call.leg))
    a.expect(p.LegEnded, leg=call.leg)
    assert secretary.wait() == 0, secretary.errors()
    assert caller.wait() == 0, caller.errors()
    _, _, (caller_side,) = channels(left)
    _, _, (secretary_side,) = channels(right)
    assert tone_frames(caller_side, CALLER_HZ) > 100 and tone_frames(caller_side, SECRETARY_HZ) == 0
    assert tone_frames(secretary_side, SECRETARY_HZ) > 100 and tone_frames(secretary_side, CALLER_HZ) == 0
