"""A call controller with call recording wired as the service wires it: a real SQLite store behind the
real call recorder, a real media vault, a Clock; only the media plane is faked (the commands a worker
would get), and the worker's end of a recording is played by the test with real WAV files."""

from __future__ import annotations

import math
import struct
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock

from callrouter.auth.sealing import new_key
from callrouter.controller.calls import CallController
from callrouter.controller.desk import Desk
from callrouter.controller.legs import LegRouter
from callrouter.controller.recorder import CallRecorder
from callrouter.controller.settings import ControllerSettings
from callrouter.domain.routing import Router
from callrouter.events.notifier import EventNotifier
from callrouter.events.testing import RecordingPublisher
from callrouter.media import protocol as p
from callrouter.metrics import Metrics
from callrouter.recording.calls import CallRecordings
from callrouter.recording.cipher import MediaKey
from callrouter.recording.ports import DemandBook
from callrouter.recording.settings import RecordingSettings
from callrouter.recording.vault import MediaVault
from callrouter.recording.voicemail import Messages
from callrouter.ports import utc_from_clock
from callrouter.store.calls import CallRepository
from callrouter.store.recordings import RecordingRepository
from callrouter.store.tasks import TaskRepository
from callrouter.store.voicemails import VoicemailRepository
from tests.controller.conftest import MONDAY_10_PARIS, FakeMedia, prompt_folder
from tests.factories import dialplan_text, load_one

SECRETARY = "sip:sec1@127.0.0.1:5090"
NUMBER = "+33100000001"


def practice(tmp_path: Path, recording: str | None) -> Any:
    """The factories' practice (open on Monday morning, menu key 3 to the general queue), with
    `recording` as its dialplan's section."""
    extra = "" if recording is None else "recording:\n" + "".join(f"  {line}\n" for line in recording.splitlines())
    (tmp_path / "plans").mkdir(parents=True, exist_ok=True)
    return load_one(tmp_path / "plans", dialplan_text(extra=extra))


def tone_file(path: Path, hz: float, seconds: float) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * hz * i / 8000)))
                               for i in range(int(8000 * seconds))))
    return path


def sync(fn, *args, **kwargs):
    return defer.maybeDeferred(fn, *args, **kwargs)


@dataclass
class Harness:
    controller: CallController
    hooks: CallRecordings
    legs: LegRouter
    media: FakeMedia
    clock: Clock
    recorder: CallRecorder
    calls: CallRepository
    store: RecordingRepository
    voicemails: VoicemailRepository
    vault: MediaVault
    spool: Path
    demands: DemandBook
    n: int = 0

    def incoming(self, caller: str = "+33612345678") -> str:
        self.n += 1
        leg = f"w0-{self.n}"
        self.legs.media_event("w0", p.IncomingCall(leg, f"sip{self.n}", f"sip:{caller}@t", f"sip:{NUMBER}@e",
                                                    NUMBER, caller))
        return leg

    def played(self, leg: str) -> None:
        self.legs.media_event("w0", p.PlaybackFinished(leg, self.media.last(p.Play, leg).path))

    def digit(self, leg: str, d: str) -> None:
        self.legs.media_event("w0", p.Digit(leg, d))

    def call_id(self, leg: str) -> str:
        return self.controller.sessions[leg].call_id

    def to_queue(self, leg: str) -> None:
        """The triage menu played, key 3 (the general queue)."""
        self.played(leg)
        self.digit(leg, "3")

    def answer(self) -> str:
        dial = self.media.last(p.Dial)
        self.legs.media_event("w0", p.LegState(dial.leg, "confirmed"))
        return dial.leg

    def finish_recording(self, command: p.RecordCall, seconds: float = 2.0, reason: str = "leg_ended") -> None:
        """The worker's end of a recording: each side a tone of its own, then the event."""
        tone_file(Path(command.path), 620, seconds)
        tone_file(Path(command.other_path), 1460, seconds)
        self.legs.media_event("w0", p.CallRecordingFinished(command.recording, command.path, command.other_path,
                                                            seconds, reason))

    def flush(self) -> None:
        assert self.recorder.flush(10)


def make_harness(tmp_path: Path, recording: str | None, db) -> Harness:
    prompts = prompt_folder(tmp_path / "prompts")
    dialplan = practice(tmp_path, recording)
    calls, tasks = CallRepository(db), TaskRepository(db)
    recorder = CallRecorder(calls)
    recorder.start()
    clock = Clock()
    clock.advance(MONDAY_10_PARIS.timestamp())
    published = RecordingPublisher()
    media = FakeMedia(published)
    settings = ControllerSettings(secretaries={"*": (SECRETARY,)}, voicemail_dir=tmp_path / "voicemail",
                                  login_required=False)
    metrics, events, legs = Metrics(), EventNotifier(published, "n1", clock), LegRouter()
    desk = Desk(settings, clock, metrics, events)
    store, voicemails = RecordingRepository(db), VoicemailRepository(db)
    vault = MediaVault(tmp_path / "vault", MediaKey(new_key()), legacy_root=tmp_path / "voicemail")
    spool = tmp_path / "spool"
    spool.mkdir()
    demands = DemandBook(store.active_demands, sync, clock)
    prompt_path = lambda name, practice_: f"{prompts}/{name}.wav"  # noqa: E731
    messages = Messages(recorder.submit, voicemails, vault, 200_000, lambda: utc_from_clock(clock))
    hooks = CallRecordings(clock, media.send, legs, prompt_path, recorder.submit, sync, store, vault, spool,
                           RecordingSettings(), demands, messages)
    router = Router([dialplan])
    controller = CallController(clock, media, recorder, lambda: router, prompt_path, settings, desk, legs, metrics,
                                events=events, tasks=tasks, recordings=hooks)
    return Harness(controller, hooks, legs, media, clock, recorder, calls, store, voicemails, vault, spool, demands)
