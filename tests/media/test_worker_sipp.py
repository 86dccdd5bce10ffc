"""The pjsua2 worker process against real SIPp callers and a SIPp secretary, over its JSON-lines RPC.

Each test starts a real worker (`python -m callrouter.media.worker`) on free loopback ports and
drives it as the controller will: it reads events and sends commands. Audio is checked where it
lands: the callers' and secretaries' SDP point at UDP sockets the test owns.
"""

from __future__ import annotations

import math
import shutil
import signal
import socket
import struct
import time
import wave
from pathlib import Path

import pytest

from callrouter.media import protocol as p
from callrouter.prompts import DEFAULT_DIR, Catalogue, build
from tests.media.harness import SIPP, RtpSink, Sipp, WorkerProc

pytestmark = [pytest.mark.integration,
              pytest.mark.needs(SIPP is None, reason="SIPp (Debian sip-tester) is not installed")]

CALLER = "+33612345678"


def tone_wav(path: Path, seconds: float = 3.0, freq: float = 440.0) -> Path:
    """An 8 kHz mono 16-bit tone: an audible prompt without depending on the TTS build."""
    frames = bytearray()
    for i in range(int(8000 * seconds)):
        frames += struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * i / 8000)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(frames))
    return path


def alaw_tone(samples: int = 160) -> bytes:
    """One 20 ms packet of a loud-ish A-law tone (not the A-law silence codes)."""
    return bytes((0x20 + (i * 7) % 64) ^ 0x55 for i in range(samples))



def answer_next_call(worker):
    """The next incoming call, answered, once the worker says it is confirmed."""
    call = worker.expect(p.IncomingCall)
    worker.send(p.Answer(leg=call.leg))
    worker.expect(p.LegState, leg=call.leg, state="confirmed")
    return call

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


def test_ready_event_reports_the_compiled_call_cap(worker):
    """The cap comes from pjsua itself (PJSUA_MAX_CALLS of the wheel), not from a constant of ours."""
    assert worker.ready.cap >= 1
    assert worker.ready.sip_port == worker.sip_port and worker.ready.pid == worker.proc.pid


def test_incoming_call_prompt_rtp_digit_and_caller_hangup(worker, sinks, tmp_path):
    """SIPp calls: the worker reports the call with its numbers and headers, answers on command,
    the prompt's audio reaches the caller's RTP port, a '3' played by SIPp (RFC 4733 pcap) arrives
    as a digit, and the caller's BYE is reported as the leg ending."""
    prompt = tone_wav(tmp_path / "prompt.wav", seconds=3)
    sink = sinks()
    caller = Sipp("caller_dtmf_bye.xml", remote_port=worker.sip_port, pause_ms=2000,
                  variables={"rtp_port": str(sink.port), "caller": CALLER}, workdir=tmp_path)
    call = worker.expect(p.IncomingCall)
    assert (call.number, call.caller, call.caller_name) == ("+33142000001", CALLER, "Patient Test")
    assert call.headers["X-Test-Case"] == "dtmf-bye" and "+33142000001" in call.headers["Diversion"]
    worker.send(p.Answer(leg=call.leg))
    worker.send(p.Play(leg=call.leg, path=str(prompt)))
    worker.expect(p.LegState, leg=call.leg, state="confirmed")
    assert sink.wait_audible(25) >= 25, f"prompt RTP not heard: {len(sink.packets)} packets"
    assert worker.expect(p.Digit, leg=call.leg).digit == "3"
    ended = worker.expect(p.LegEnded, leg=call.leg)
    assert ended.by == "remote"
    assert caller.wait() == 0, caller.errors()
    assert any(isinstance(e, p.PlaybackFinished) for e in worker.seen)


def test_worker_hangup_reaches_the_caller(worker, sinks, tmp_path):
    """A hangup command on an answered leg sends a BYE that SIPp receives and answers."""
    sink = sinks()
    caller = Sipp("caller_wait_bye.xml", remote_port=worker.sip_port,
                  variables={"rtp_port": str(sink.port), "caller": CALLER}, workdir=tmp_path)
    call = answer_next_call(worker)
    worker.send(p.Hangup(leg=call.leg))
    ended = worker.expect(p.LegEnded, leg=call.leg)
    assert (ended.code, ended.by) == (200, "local"), ended
    assert caller.wait() == 0, caller.errors()


def test_dial_a_secretary_and_bridge_both_ways(worker, sinks, tmp_path):
    """The worker dials a SIPp secretary with a display name and headers, survives the late 180
    sent after the 200, and once bridged, audio flows caller -> secretary and secretary -> caller."""
    caller_rtp, secretary_rtp = sinks(), sinks()
    secretary = Sipp("uas_secretary.xml", variables={"rtp_port": str(secretary_rtp.port)}, workdir=tmp_path)
    caller = Sipp("caller_wait_bye.xml", remote_port=worker.sip_port,
                  variables={"rtp_port": str(caller_rtp.port), "caller": CALLER}, workdir=tmp_path)
    call = answer_next_call(worker)
    worker.send(p.Dial(leg="sec-1", uri=f"sip:secretary@127.0.0.1:{secretary.port}",
                       display_name="Cabinet Exemple", headers={"X-Callrouter-Call": "call-42"}))
    worker.expect(p.LegState, leg="sec-1", state="ringing")
    worker.expect(p.LegState, leg="sec-1", state="confirmed")
    worker.send(p.Bridge(leg=call.leg, other="sec-1"))
    # Learn where the worker sends each leg's RTP from (symmetric RTP), then talk into each leg.
    _wait_for_source(caller_rtp)
    _wait_for_source(secretary_rtp)
    caller_rtp.send_rtp(next(iter(caller_rtp.sources)), alaw_tone(), count=50)
    assert secretary_rtp.wait_audible(20) >= 20, "caller's voice did not reach the secretary"
    secretary_rtp.send_rtp(next(iter(secretary_rtp.sources)), alaw_tone(), count=50)
    assert caller_rtp.wait_audible(20) >= 20, "secretary's voice did not reach the caller"
    states = [e.state for e in worker.seen if isinstance(e, p.LegState) and e.leg == "sec-1"]
    assert states == ["ringing", "confirmed"], "the late 180 must not move the leg backwards"
    worker.send(p.Hangup(leg="sec-1"))
    worker.send(p.Hangup(leg=call.leg))
    worker.expect(p.LegEnded, leg="sec-1")
    worker.expect(p.LegEnded, leg=call.leg)
    assert secretary.wait() == 0, secretary.errors()
    assert caller.wait() == 0, caller.errors()


def _wait_for_source(sink: RtpSink, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not sink.sources and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sink.sources, "the worker sent no RTP on this leg"


def test_call_beyond_the_cap_gets_486_and_a_dial_beyond_it_fails_cleanly(worker, tmp_path):
    """With every call slot held by ringing callers, pjsua itself answers the next INVITE 486 and a
    dial command ends at once with leg_ended 486 by the worker; the held callers are then rejected
    with 480 on command."""
    cap = worker.ready.cap
    held = Sipp("caller_ringing_480.xml", remote_port=worker.sip_port, calls=cap,
                variables={"rtp_port": "4000", "caller": CALLER}, workdir=tmp_path)
    legs = [worker.expect(p.IncomingCall).leg for _ in range(cap)]
    busy = Sipp("caller_busy_486.xml", remote_port=worker.sip_port,
                variables={"rtp_port": "4002", "caller": CALLER}, workdir=tmp_path)
    assert busy.wait() == 0, busy.errors()
    worker.send(p.Dial(leg="overflow", uri="sip:nobody@127.0.0.1:9"))
    ended = worker.expect(p.LegEnded, leg="overflow")
    assert (ended.code, ended.by) == (486, "worker")
    for leg in legs:
        worker.send(p.Hangup(leg=leg, code=480))
    for leg in legs:
        worker.expect(p.LegEnded, leg=leg)
    assert held.wait() == 0, held.errors()


def test_voicemail_recording_stops_on_pound(worker, sinks, tmp_path):
    """The caller's voice (SIPp's g711a pcap) is recorded to a WAV until the caller presses #."""
    sink = sinks()
    caller = Sipp("caller_voicemail.xml", remote_port=worker.sip_port, pause_ms=500,
                  variables={"rtp_port": str(sink.port), "caller": CALLER}, workdir=tmp_path)
    call = answer_next_call(worker)
    target = tmp_path / "voicemail" / "msg.wav"
    worker.send(p.Record(leg=call.leg, path=str(target), max_seconds=30, silence_seconds=0))
    done = worker.expect(p.RecordingFinished, leg=call.leg)
    assert done.reason == "digit" and done.path == str(target)
    assert done.duration > 4
    with wave.open(str(target), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        samples = struct.unpack(f"<{wav.getnframes()}h", wav.readframes(wav.getnframes()))
    assert len(samples) > 8000 * 4 and max(abs(s) for s in samples) > 1000, "the recording is silent"
    worker.expect(p.LegEnded, leg=call.leg)
    assert caller.wait() == 0, caller.errors()


def test_bad_commands_and_malformed_sip_get_errors_not_a_crash(worker, sinks, tmp_path):
    """Garbage on the RPC and on the SIP port is answered with error events or ignored; the worker
    then still takes a real call."""
    for line in (b"not json\n", b"[1,2]\n", b'{"v":2,"type":"answer","leg":"x"}\n',
                 b'{"v":1,"type":"launch_rocket"}\n', b'{"v":1,"type":"answer"}\n',
                 b'{"v":1,"type":"hangup","leg":"x","code":"486"}\n', b"\xff\xfe\n",
                 p.encode(p.Play(leg="nope", path="/nonexistent.wav")),
                 p.encode(p.Bridge(leg="a", other="b"))):
        worker.send(line)
        assert isinstance(worker.expect(p.Error), p.Error)
    worker.send(b"x" * (p.MAX_LINE_BYTES + 10) + b"\n")
    assert "longer" in worker.expect(p.Error).message
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for datagram in (b"\x00\x01garbage", b"INVITE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n",
                         b"INVITE sip:1@127.0.0.1 SIP/2.0\r\nContent-Length: 99999\r\n\r\nv=0",
                         b"SIP/2.0 200 OK\r\nCSeq: x\r\n\r\n"):
            s.sendto(datagram, ("127.0.0.1", worker.sip_port))
    sink = sinks()
    caller = Sipp("caller_wait_bye.xml", remote_port=worker.sip_port,
                  variables={"rtp_port": str(sink.port), "caller": CALLER}, workdir=tmp_path)
    call = answer_next_call(worker)
    worker.send(p.Hangup(leg=call.leg))
    worker.expect(p.LegEnded, leg=call.leg)
    assert caller.wait() == 0, caller.errors()


def test_sip_info_digit_is_reported(worker, sinks, tmp_path):
    """A digit sent as SIP INFO (application/dtmf-relay) is reported like an RFC 4733 one."""
    sink = sinks()
    caller = Sipp("caller_info_dtmf.xml", remote_port=worker.sip_port, pause_ms=500,
                  variables={"rtp_port": str(sink.port), "caller": CALLER}, workdir=tmp_path)
    call = worker.expect(p.IncomingCall)
    worker.send(p.Answer(leg=call.leg))
    digit = worker.expect(p.Digit, leg=call.leg)
    assert (digit.digit, digit.method) == ("5", "info")
    worker.expect(p.LegEnded, leg=call.leg)
    assert caller.wait() == 0, caller.errors()


def test_transfer_sends_refer_and_ends_the_leg_once_the_far_end_took_it(worker, sinks, tmp_path):
    """transfer -> REFER (Refer-To checked by SIPp) -> 202 + NOTIFY 200 -> the worker hangs up."""
    sink = sinks()
    caller = Sipp("caller_refer.xml", remote_port=worker.sip_port,
                  variables={"rtp_port": str(sink.port), "caller": CALLER}, workdir=tmp_path)
    call = answer_next_call(worker)
    worker.send(p.Transfer(leg=call.leg, uri="sip:15@127.0.0.1"))
    ended = worker.expect(p.LegEnded, leg=call.leg)
    assert (ended.code, ended.reason, ended.by) == (200, "transferred", "local")
    assert caller.wait() == 0, caller.errors()


def test_voicemail_recording_stops_after_silence(worker, sinks, tmp_path):
    """The caller speaks (g711a pcap, about 7 s) then sends nothing: recording stops on silence."""
    sink = sinks()
    caller = Sipp("caller_voicemail_silence.xml", remote_port=worker.sip_port, pause_ms=300,
                  variables={"rtp_port": str(sink.port), "caller": CALLER}, workdir=tmp_path)
    call = answer_next_call(worker)
    worker.send(p.Record(leg=call.leg, path=str(tmp_path / "vm.wav"), max_seconds=60, silence_seconds=2.5))
    done = worker.expect(p.RecordingFinished, leg=call.leg, timeout=40)
    assert done.reason == "silence" and 5 < done.duration < 16, done
    worker.send(p.Hangup(leg=call.leg))
    worker.expect(p.LegEnded, leg=call.leg)
    caller.kill()


@pytest.mark.needs(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox")
def test_a_built_french_prompt_reaches_the_caller(worker, sinks, tmp_path):
    """End to end: `prompts.build` makes welcome.wav, the worker plays it, its speech is heard."""
    catalogue = Catalogue.load(DEFAULT_DIR)
    report = build(catalogue, tmp_path / "build")
    assert report.ok, report.problems
    sink = sinks()
    caller = Sipp("caller_wait_bye.xml", remote_port=worker.sip_port,
                  variables={"rtp_port": str(sink.port), "caller": CALLER}, workdir=tmp_path)
    call = worker.expect(p.IncomingCall)
    worker.send(p.Answer(leg=call.leg))
    worker.send(p.Play(leg=call.leg, path=str(tmp_path / "build" / "welcome.wav")))
    worker.expect(p.PlaybackFinished, leg=call.leg)
    assert sink.audible() >= 50, f"{sink.audible()} audible packets of {len(sink.packets)}"
    worker.send(p.Play(leg=call.leg, path=str(tmp_path / "build" / "music_on_hold.wav"), loop=True))
    heard = sink.audible()
    assert sink.wait_audible(heard + 25) >= heard + 25, "music on hold not heard"
    worker.send(p.StopPlayback(leg=call.leg))
    worker.send(p.Hangup(leg=call.leg))
    worker.expect(p.LegEnded, leg=call.leg)
    assert caller.wait() == 0, caller.errors()
    assert not any(isinstance(e, p.PlaybackFinished) and "music" in e.path for e in worker.seen)


def test_an_unanswered_dial_is_cancelled_at_its_timeout(worker, tmp_path):
    """dial with timeout_seconds: the phone rings, the worker sends CANCEL, the leg ends with 487."""
    callee = Sipp("uas_ring_cancel.xml", workdir=tmp_path)
    worker.send(p.Dial(leg="oc-1", uri=f"sip:callee@127.0.0.1:{callee.port}", timeout_seconds=1))
    worker.expect(p.LegState, leg="oc-1", state="ringing")
    ended = worker.expect(p.LegEnded, leg="oc-1")
    assert (ended.code, ended.by) == (487, "local")
    assert callee.wait() == 0, callee.errors()


@pytest.mark.parametrize("stop", ["stdin_closed", "sigterm"])
def test_a_stopping_worker_hangs_up_its_calls_and_exits_cleanly(stop, sinks, tmp_path):
    """End of stdin (the pool's stop) or SIGTERM: the answered caller gets a BYE, exit code 0."""
    w = WorkerProc()
    try:
        sink = sinks()
        caller = Sipp("caller_wait_bye.xml", remote_port=w.sip_port,
                      variables={"rtp_port": str(sink.port), "caller": CALLER}, workdir=tmp_path)
        call = w.expect(p.IncomingCall)
        w.send(p.Answer(leg=call.leg))
        w.expect(p.LegState, leg=call.leg, state="confirmed")
        if stop == "sigterm":
            w.proc.send_signal(signal.SIGTERM)
        else:
            w.proc.stdin.close()
        assert w.expect(p.LegEnded, leg=call.leg).by == "local"
        assert w.proc.wait(timeout=20) == 0, "".join(w.stderr_lines[-20:])
        assert caller.wait() == 0, caller.errors()
    finally:
        w.stop()


def test_early_media_prompt_before_the_answer(worker, sinks, tmp_path):
    """answer 183 gives early media: the prompt is heard before the call is answered with 200."""
    sink = sinks()
    caller = Sipp("caller_wait_bye.xml", remote_port=worker.sip_port,
                  variables={"rtp_port": str(sink.port), "caller": CALLER}, workdir=tmp_path)
    call = worker.expect(p.IncomingCall)
    worker.send(p.Answer(leg=call.leg, code=183))
    worker.send(p.Play(leg=call.leg, path=str(tone_wav(tmp_path / "t.wav", seconds=2))))
    assert sink.wait_audible(20) >= 20, "no early media"
    assert not any(isinstance(e, p.LegState) for e in worker.seen), "answered too early"
    worker.send(p.Answer(leg=call.leg))
    worker.expect(p.LegState, leg=call.leg, state="confirmed")
    worker.send(p.Hangup(leg=call.leg))
    worker.expect(p.LegEnded, leg=call.leg)
    assert caller.wait() == 0, caller.errors()


def test_a_caller_hanging_up_while_ringing_ends_the_leg(worker, tmp_path):
    """answer 180, then the caller cancels: the leg ends with 487, reported as remote."""
    caller = Sipp("caller_cancel.xml", remote_port=worker.sip_port,
                  variables={"rtp_port": "4000", "caller": CALLER}, workdir=tmp_path)
    call = worker.expect(p.IncomingCall)
    worker.send(p.Answer(leg=call.leg, code=180))
    ended = worker.expect(p.LegEnded, leg=call.leg)
    assert (ended.code, ended.by) == (487, "remote")
    assert caller.wait() == 0, caller.errors()


def test_a_full_worker_keeps_each_legs_audio_and_digits_apart(worker, sinks, tmp_path):
    """As many callers as the cap at once: each is answered and hears its prompt (RTP from as many
    distinct worker ports), and each caller's '3' is reported on its own leg exactly once."""
    cap = worker.ready.cap
    sink = sinks()
    prompt = tone_wav(tmp_path / "p.wav", seconds=4)
    callers = Sipp("caller_dtmf_bye.xml", remote_port=worker.sip_port, calls=cap, pause_ms=3000,
                   variables={"rtp_port": str(sink.port), "caller": CALLER}, workdir=tmp_path)
    legs = [worker.expect(p.IncomingCall).leg for _ in range(cap)]
    for leg in legs:
        worker.send(p.Answer(leg=leg))
        worker.send(p.Play(leg=leg, path=str(prompt)))
    for leg in legs:
        worker.expect(p.LegEnded, leg=leg)
    assert callers.wait() == 0, callers.errors()
    digits = sorted((e.leg, e.digit) for e in worker.seen if isinstance(e, p.Digit))
    assert digits == sorted((leg, "3") for leg in legs)
    assert len(sink.sources) == cap and sink.audible() >= 20 * cap


def test_a_dialled_party_hanging_up_is_reported(worker, sinks, tmp_path):
    """The secretary's BYE on a leg the worker dialled ends that leg, reported as remote."""
    sink = sinks()
    secretary = Sipp("uas_answer_then_bye.xml", pause_ms=1000, variables={"rtp_port": str(sink.port)},
                     workdir=tmp_path)
    worker.send(p.Dial(leg="sec-9", uri=f"sip:secretary@127.0.0.1:{secretary.port}"))
    worker.expect(p.LegState, leg="sec-9", state="confirmed")
    ended = worker.expect(p.LegEnded, leg="sec-9")
    assert ended.by == "remote"
    assert secretary.wait() == 0, secretary.errors()
