"""Restarting the controller alone drops no call, shown on the three parts as systemd runs them:
`callrouter media` (the workers), `callrouter edge` (Kamailio) and `callrouter controller`, three
processes on one settings file. A patient talks to a secretary (SIPp on both ends, RTP counted at
each), another waits in the queue; the controller gets SIGTERM and a new one starts: the bridged
call still carries audio both ways, the waiting patient hears her music again and is served once
the secretary is free, and both records are complete (answered, by her), none lost. A secretary's
phone ringing when the controller stops rings on and, answered, is bridged: offered once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callrouter.devtools.serve import CLI, RUNNING, ServeProcess, _alive
from tests.app.acd_support import RING_TIMEOUT_S, Acd, Practice, start_acd
from tests.media.test_worker_sipp import alaw_tone
from tests.sip.harness import wait_for

pytestmark = pytest.mark.integration

PRACTICE = Practice("restart", "+33100000201", ("rita",), wait_max="300s")  # no overflow while waiting out TALK_S
TALK_S = 45  # the first patient hangs up this long after she was answered: the restart happens meanwhile


@dataclass
class SplitService(ServeProcess):
    """The media service and the edge started once; the controller started, stopped and started again."""

    parts: dict[str, subprocess.Popen] = field(default_factory=dict)
    starts: int = 0

    def start(self, ready=None) -> "SplitService":
        path = self.root / "callrouter.yaml"
        path.write_text(json.dumps(self.config))
        subprocess.run([CLI, "db", "upgrade", "--config", str(path)], cwd=self.root, check=True,
                       capture_output=True, timeout=120)
        for part in ("media", "edge"):
            self.parts[part] = subprocess.Popen([CLI, part, "--config", str(path)], cwd=self.root,
                                                stdout=(self.root / f"{part}.log").open("wb"),
                                                stderr=subprocess.STDOUT, start_new_session=True)
        return self.start_controller()

    def start_controller(self) -> "SplitService":
        self.starts += 1
        self.log = self.root / f"controller-{self.starts}.log"
        self.proc = subprocess.Popen([CLI, "controller", "--config", str(self.root / "callrouter.yaml")],
                                     cwd=self.root, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.wait_metric("callrouter_media_workers", lambda v: v >= self.config["media"]["workers_min"], timeout=90)
        self.wait_log(RUNNING, timeout=90)
        return self

    def stop_controller(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def workers(self) -> dict[str, int]:
        """Worker name -> pid, the media service's children."""
        media = self.parts["media"].pid
        out = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                argv = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
            except OSError:
                continue
            if int(stat.rsplit(") ", 1)[1].split()[1]) == media and "--name" in argv[:-1]:
                out[argv[argv.index("--name") + 1]] = int(entry.name)
        return out

    def stop(self, timeout: float = 30, sig: int = signal.SIGTERM) -> list[int]:
        left = list(self.workers().values())
        for proc in (self.proc, self.parts.get("edge"), self.parts.get("media")):
            if proc is not None and proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in left):
            time.sleep(0.1)
        return [p for p in left if _alive(p)]


def start_split(root: Path, ring_timeout_s: float = RING_TIMEOUT_S) -> Acd:
    return start_acd(root, [PRACTICE], service=SplitService, controller={"ring_timeout_s": ring_timeout_s})


def audible_after(sink, before: int, more: int, timeout: float = 30) -> int:
    return wait_for(lambda: sink.audible() - before >= more and sink.audible(), timeout=timeout, interval=0.1) or 0


def test_restarting_the_controller_alone_drops_no_call(tmp_path, prompts_built):
    acd = start_split(tmp_path)
    svc: SplitService = acd.svc  # type: ignore[assignment]
    try:
        rita = acd.softphone("rita")
        rita.register()
        acd.wait_registered()
        rita.take([("answer", 300, 0), ("answer", 300, 3000)], timeout_s=240)  # the first: until the patient's BYE
        talking = acd.patient(PRACTICE.name, "+33611111111", steps=[("pause", TALK_S * 1000)], end="bye")
        patient_rtp = acd.sinks[-1]
        acd.record("+33611111111", until=lambda r: r.answered_at is not None)
        waiting = acd.patient(PRACTICE.name, "+33622222222", end="wait_bye", wait_bye_ms=180000)
        waiting_rtp, secretary_rtp = acd.sinks[-1], rita.sinks[0]
        acd.record("+33622222222", until=lambda r: r.queued_at is not None)
        assert wait_for(lambda: patient_rtp.sources and secretary_rtp.sources, timeout=20)
        workers = svc.workers()

        assert svc.stop_controller() == 0                       # systemctl restart callrouter
        assert talking.proc.poll() is None and waiting.proc.poll() is None
        assert svc.workers() == workers                         # the same worker processes
        music = waiting_rtp.audible()
        svc.start_controller()
        svc.wait_log("re-adopted 2 call(s)", timeout=30)
        svc.wait_metric("callrouter_edge_up", lambda v: v == 1)  # the edge apart, probed over its RPC

        assert audible_after(waiting_rtp, music, 25), "the waiting patient hears no music after the restart"
        heard = secretary_rtp.audible()
        patient_rtp.send_rtp(next(iter(patient_rtp.sources)), alaw_tone(), count=50)
        assert audible_after(secretary_rtp, heard, 20), "the patient's voice does not reach the secretary"
        heard = patient_rtp.audible()
        secretary_rtp.send_rtp(next(iter(secretary_rtp.sources)), alaw_tone(), count=50)
        assert audible_after(patient_rtp, heard, 20), "the secretary's voice does not reach the patient"

        assert talking.wait(TALK_S + 60) == 0, talking.errors()
        assert waiting.wait(120) == 0, waiting.errors()
        rita.finish()
        first = acd.record("+33611111111")
        second = acd.record("+33622222222")
        for record in (first, second):
            assert (record.outcome, record.secretary, record.cause) == ("answered", acd.uri("rita"), None), record
        assert second.answered_at >= first.ended_at            # served once the secretary was free again
        assert rita.offers() == [first.id, second.id]           # each offered once, in order
        assert not [r for r in svc.calls() if r.outcome != "answered"]
    finally:
        acd.kill_started()
        stray = svc.stop()
        assert not stray, f"processes left running after stop: {stray}"


def test_a_phone_ringing_when_the_controller_restarts_rings_on_and_is_answered(tmp_path, prompts_built):
    """The secretary's phone rings for a queued patient; the controller restarts meanwhile; she
    answers 20 s after it began ringing: the patient is bridged to her, offered once, not hung up
    and offered again."""
    acd = start_split(tmp_path, ring_timeout_s=40)
    svc: SplitService = acd.svc  # type: ignore[assignment]
    try:
        rita = acd.softphone("rita")
        rita.register()
        acd.wait_registered()
        phone = rita.take([("answer", 20000, 3000)], timeout_s=120)  # rings 20 s, talks 3 s, hangs up
        patient = acd.patient(PRACTICE.name, "+33644444444", end="wait_bye", wait_bye_ms=90000)
        assert wait_for(lambda: phone.received("INVITE") >= 1, timeout=30), svc.log_tail()

        assert svc.stop_controller() == 0
        assert patient.proc.poll() is None and phone.proc.poll() is None
        svc.start_controller()
        svc.wait_log("re-adopted 1 call(s)", timeout=30)
        assert "still ringing" in svc.log_text() or "answered" in svc.log_text()

        assert phone.wait(90) == 0, phone.errors()                # answered once, then hung up
        assert patient.wait(60) == 0, patient.errors()            # her call lasted until the secretary's BYE
        record = acd.record("+33644444444")
        assert (record.outcome, record.secretary, record.cause) == ("answered", acd.uri("rita"), None), record
        assert rita.offers() == [record.id]                        # one INVITE: rung once, not again
        assert phone.received("CANCEL") == 0
    finally:
        acd.kill_started()
        stray = svc.stop()
        assert not stray, f"processes left running after stop: {stray}"
