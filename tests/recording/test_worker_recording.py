"""A real pjsua2 worker records a bridged conversation from its conference bridge: each side into a
file of its own, on one clock, made one stereo file with the caller left and the secretary right.

The patient (SIPp) sends one tone, the secretary (SIPp) another; what is in each file is checked
with a Goertzel filter, frame by frame."""

from __future__ import annotations

import pytest

from callrouter.media import protocol as p
from callrouter.recording.audio import merge_stereo
from tests.media.harness import SIPP, RtpSink, Sipp, WorkerProc
from tests.recording.tones import CALLER_HZ, SECRETARY_HZ, caller_with_tone, channels, secretary_with_tone, tone_frames

pytestmark = [pytest.mark.integration,
              pytest.mark.needs(SIPP is None, reason="SIPp (Debian sip-tester) is not installed")]


@pytest.fixture
def worker():
    w = WorkerProc()
    yield w
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


def bridged_call(worker, sinks, tmp_path, secretary_steps, caller_steps):
    caller_rtp, secretary_rtp = sinks(), sinks()
    secretary = Sipp(str(secretary_with_tone(tmp_path, "secretary", secretary_steps)),
                     variables={"rtp_port": str(secretary_rtp.port)}, workdir=tmp_path, timeout_s=60)
    caller = Sipp(str(caller_with_tone(tmp_path, "caller", caller_steps)), remote_port=worker.sip_port,
                  variables={"rtp_port": str(caller_rtp.port), "caller": "+33612345678"}, workdir=tmp_path,
                  timeout_s=60)
    call = worker.expect(p.IncomingCall)
    worker.send(p.Answer(leg=call.leg))
    worker.expect(p.LegState, leg=call.leg, state="confirmed")
    worker.send(p.Dial(leg="sec-1", uri=f"sip:secretary@127.0.0.1:{secretary.port}"))
    worker.expect(p.LegState, leg="sec-1", state="confirmed")
    worker.send(p.Bridge(leg=call.leg, other="sec-1"))
    return call, caller, secretary


def test_both_sides_are_recorded_apart_and_laid_side_by_side(worker, sinks, tmp_path):
    """The caller's tone is in the first file only, the secretary's in the second only; merged,
    the left channel is the caller's and the right the secretary's, as long as the conversation."""
    call, caller, secretary = bridged_call(
        worker, sinks, tmp_path, [("pause", 1500), ("tone", (SECRETARY_HZ, 3000)), ("pause", 500)],
        [("pause", 200), ("tone", (CALLER_HZ, 3000))])
    left, right = tmp_path / "spool" / "a.wav", tmp_path / "spool" / "b.wav"
    worker.send(p.RecordCall(leg=call.leg, other="sec-1", recording="rec-1", path=str(left), other_path=str(right)))
    worker.send(p.RecordCall(leg=call.leg, other="sec-1", recording="rec-2", path=str(left) + "x",
                             other_path=str(right) + "x"))
    refused = worker.expect(p.Error, command="record_call")
    assert "already" in refused.message
    worker.expect(p.LegEnded, leg="sec-1")  # the secretary hangs up after her tone
    done = worker.expect(p.CallRecordingFinished, leg="rec-1")
    assert done.reason == "leg_ended" and (done.path, done.other_path) == (str(left), str(right))
    assert 4.0 < done.duration < 8.0
    worker.send(p.Hangup(leg=call.leg))
    worker.expect(p.LegEnded, leg=call.leg)
    assert secretary.wait() == 0, secretary.errors()
    assert caller.wait() == 0, caller.errors()

    _, _, (a,) = channels(left)
    _, _, (b,) = channels(right)
    assert tone_frames(a, CALLER_HZ) > 100 and tone_frames(a, SECRETARY_HZ) == 0
    assert tone_frames(b, SECRETARY_HZ) > 100 and tone_frames(b, CALLER_HZ) == 0
    merged = merge_stereo(left, right, tmp_path / "both.wav")
    assert merged.channels == 2 and abs(merged.duration_seconds - done.duration) < 0.5
    n, rate, (l_, r_) = channels(tmp_path / "both.wav")
    assert (n, rate) == (2, 8000)
    assert tone_frames(l_, CALLER_HZ) > 100 and tone_frames(l_, SECRETARY_HZ) == 0
    assert tone_frames(r_, SECRETARY_HZ) > 100 and tone_frames(r_, CALLER_HZ) == 0


def test_a_recording_stopped_on_command_ends_while_the_call_goes_on(worker, sinks, tmp_path):
    """stop_call_recording (« le patient refuse ») ends the recording at once; the legs stay up."""
    call, caller, secretary = bridged_call(worker, sinks, tmp_path, [("pause", 4000)], [("tone", (CALLER_HZ, 3000))])
    worker.send(p.RecordCall(leg=call.leg, other="sec-1", recording="rec-9", path=str(tmp_path / "a.wav"),
                             other_path=str(tmp_path / "b.wav")))
    worker.send(p.StopCallRecording(leg="sec-1"))
    done = worker.expect(p.CallRecordingFinished, leg="rec-9")
    assert done.reason == "stopped" and done.duration < 2
    assert not any(isinstance(e, p.LegEnded) for e in worker.seen)
    worker.send(p.StopCallRecording(leg=call.leg))
    assert "no conversation recording" in worker.expect(p.Error, command="stop_call_recording").message
    worker.expect(p.LegEnded, leg="sec-1")
    worker.send(p.Hangup(leg=call.leg))
    worker.expect(p.LegEnded, leg=call.leg)
    assert secretary.wait() == 0 and caller.wait() == 0


def test_only_two_bridged_legs_can_be_recorded(worker, sinks, tmp_path):
    caller_rtp = sinks()
    caller = Sipp(str(caller_with_tone(tmp_path, "caller", [])), remote_port=worker.sip_port,
                  variables={"rtp_port": str(caller_rtp.port), "caller": "+33612345678"}, workdir=tmp_path)
    call = worker.expect(p.IncomingCall)
    worker.send(p.Answer(leg=call.leg))
    worker.expect(p.LegState, leg=call.leg, state="confirmed")
    worker.send(p.RecordCall(leg=call.leg, other="nobody", recording="r", path=str(tmp_path / "a.wav"),
                             other_path=str(tmp_path / "b.wav")))
    assert "no live leg" in worker.expect(p.Error, command="record_call").message
    worker.send(p.Hangup(leg=call.leg))
    worker.expect(p.LegEnded, leg=call.leg)
    assert caller.wait() == 0, caller.errors()
    assert not (tmp_path / "a.wav").exists()
