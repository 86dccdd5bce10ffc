"""A real softphone: baresip registers through Kamailio with its SIP password, and a call from a
media worker is routed to it (lookup location), auto-answered, with audio both ways."""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import wave
from pathlib import Path

import pytest

from tests.media.harness import RtpSink
from tests.sip.conftest import SIP_PASSWORD
from tests.sip.harness import free_port, wait_for
from tests.sip.sipclient import SipClient

pytestmark = pytest.mark.integration

BARESIP = shutil.which("baresip")
PHONE_IP = "127.0.0.81"


class Baresip:
    """baresip with its own config dir: sine tone as microphone, decoded audio dumped to WAV."""

    def __init__(self, workdir: Path, registrar: tuple[str, int], user: str, password: str) -> None:
        self.dir = workdir / "baresip"
        self.dir.mkdir()
        (self.dir / "config").write_text(
            "poll_method epoll\n"
            f"sip_listen {PHONE_IP}:{free_port(host=PHONE_IP)}\n"
            f"net_interface {PHONE_IP}\n"
            "audio_player aubridge,nowhere\n"
            "audio_alert aubridge,nowhere\n"
            "audio_source ausine,440\n"
            "ausrc_srate 48000\n"
            "ausrc_channels 2\n"
            "module_path /usr/lib/baresip/modules\n"
            "module g711.so\nmodule ausine.so\nmodule aubridge.so\nmodule sndfile.so\n"
            "module_tmp account.so\nmodule_app menu.so\n"
            f"snd_path {self.dir}\n")
        (self.dir / "accounts").write_text(
            f"<sip:{user}@{registrar[0]}:{registrar[1]};transport=udp>;auth_pass={password};"
            "answermode=auto;regint=300;audio_codecs=PCMA\n")
        self.log = open(self.dir / "baresip.log", "wb")
        self.proc = subprocess.Popen([BARESIP, "-f", str(self.dir), "-t", "90"],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return (self.dir / "baresip.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


def pcma_tone(samples: int = 160, offset: int = 0) -> bytes:
    """A loud square wave in A-law (0x2A / 0xAA: +-~ 2/3 scale), never the silence code 0xD5."""
    return bytes(0x2A if ((offset + i) // 8) % 2 else 0xAA for i in range(samples))


@pytest.mark.needs(BARESIP is None, reason="baresip not installed (scripts/ensure-system-deps)")
def test_baresip_registers_and_answers_a_routed_call_with_two_way_audio(edge, tmp_path):
    phone = Baresip(tmp_path, edge.address, "alice", SIP_PASSWORD)
    worker = SipClient(edge.address, bind_port=edge.sip.worker_ports()[0])
    rtp = RtpSink()
    try:
        def registered():
            return any("baresip" in (c.user_agent or "")
                       for c in edge.kamailio.rpc.fetch().get("alice", ()))
        assert wait_for(registered), phone.output()

        host, port = edge.address
        sdp = ("v=0\r\no=worker 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               f"m=audio {rtp.port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n")
        worker.send(worker.build("INVITE", f"sip:alice@{host}:{port}", "worker0", "alice",
                                 "baresip-call-1", 1, [], sdp))
        ok = worker.final(timeout=20)
        assert ok is not None and ok.status == 200, phone.output() + edge.kamailio.log_tail()
        media = re.search(r"c=IN IP4 (\S+).*?m=audio (\d+)", ok.raw, re.S)
        contact = re.search(r"<([^>]+)>", ok.header("Contact")).group(1)
        routes = [value for key, value in ok.headers if key.lower() == "record-route"]
        in_dialog = [f"Route: {', '.join(routes)}"] if routes else []
        to = ok.header("To")

        def in_dialog_request(method: str, cseq: int) -> bytes:
            data = worker.build(method, contact, "worker0", "alice", "baresip-call-1", cseq,
                                in_dialog, to_uri=None)
            return data.replace(f"To: <sip:alice@{host}>".encode(), f"To: {to}".encode())

        worker.send(in_dialog_request("ACK", 1))
        rtp.send_rtp((media.group(1), int(media.group(2))), pcma_tone(), count=100)  # 2 s of tone to the phone
        assert wait_for(lambda: rtp.audible() >= 50), "no audible RTP from baresip"
        worker.send(in_dialog_request("BYE", 2))
        bye_ok = worker.final(timeout=10)
        assert bye_ok is not None and bye_ok.status == 200
    finally:
        rtp.close()
        worker.close()
        phone.stop()
    decoded = sorted(phone.dir.glob("*dec.wav"))
    assert decoded, sorted(p.name for p in phone.dir.iterdir())
    with wave.open(str(decoded[0])) as wav:
        frames = wav.readframes(wav.getnframes())
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    assert sum(1 for s in samples if abs(s) > 2000) > 8000  # our tone reached the phone
