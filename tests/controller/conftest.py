"""A controller wired to a real call store (SQLite) through the real recorder, a fake media plane
(the commands it would send to workers) and a Clock; events reach it through the real leg router,
as the worker pool delivers them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest
from twisted.internet.task import Clock

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
from callrouter.prompts import Catalogue
from callrouter.store.calls import CallRepository
from callrouter.store.tasks import TaskRepository
from callrouter.store.testing import fresh_database
from tests.factories import examples

MONDAY_10_PARIS = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)
MARTIN = "+33143550101"


class FakeMedia:
    """Stands in for the worker pool (callrouter.ports.MediaControl): records what would be sent
    to each worker (and how many events had been published by then, to check what a secretary's
    screen shows before she rings). A command the worker would refuse fails the test."""

    def __init__(self, events: RecordingPublisher):
        self.sent: list[tuple[str | None, Any]] = []
        self.events = events
        self.events_before: list[int] = []

    def pick(self, legs: int = 1) -> str | None:
        return "w0"

    def dial(self, worker: str, command: p.Dial) -> None:
        self._record(worker, command)

    def send(self, command: p.Command) -> None:
        self._record(None, command)  # to the worker holding its leg

    def _record(self, worker: str | None, command: Any) -> None:
        try:
            if hasattr(command, "check"):
                command.check()  # what the worker would refuse (e.g. a hang-up code that is not a failure)
        except ValueError as exc:
            raise AssertionError(f"the worker would refuse {command!r}: {exc}") from None
        self.sent.append((worker, command))
        self.events_before.append(len(self.events.sent))

    def commands(self, kind=None, leg=None) -> list[Any]:
        return [c for _, c in self.sent if (kind is None or isinstance(c, kind)) and (leg is None or c.leg == leg)]

    def last(self, kind=None, leg=None) -> Any:
        found = self.commands(kind, leg)
        assert found, f"no {kind.__name__ if kind else 'command'} sent"
        return found[-1]

    def prompts(self, leg: str) -> list[str]:
        return [c.path.rsplit("/", 1)[-1].removesuffix(".wav") for c in self.commands(p.Play, leg)]


@dataclass
class Harness:
    controller: CallController
    desk: Desk
    legs: LegRouter
    media: FakeMedia
    clock: Clock
    recorder: CallRecorder
    calls: CallRepository
    escalations: list = field(default_factory=list)
    published: RecordingPublisher | None = None
    tasks: TaskRepository | None = None
    _n: int = 0

    def incoming(self, number: str = MARTIN, caller: str = "+33612345678", worker: str = "w0") -> str:
        self._n += 1
        leg = f"{worker}-{self._n}"
        self.legs.media_event(worker, p.IncomingCall(leg, f"sipcall{self._n}", f"sip:{caller}@trunk",
                                                      f"sip:{number}@edge", number, caller))
        return leg

    def finish_playing(self, leg: str, times: int = 1, worker: str = "w0") -> None:
        for _ in range(times):
            self.legs.media_event(worker, p.PlaybackFinished(leg, self.media.last(p.Play, leg).path))

    def digit(self, leg: str, d: str, worker: str = "w0") -> None:
        self.legs.media_event(worker, p.Digit(leg, d))

    def ended(self, leg: str, code: int = 200, worker: str = "w0") -> None:
        self.legs.media_event(worker, p.LegEnded(leg, code, "", "remote"))

    def answered(self, leg: str, worker: str = "w0") -> None:
        self.legs.media_event(worker, p.LegState(leg, "confirmed"))

    def call_id(self, leg: str) -> str:
        return self.controller.sessions[leg].call_id

    def record(self, call_id: str):
        assert self.recorder.flush(10)
        return self.calls.get(call_id)


def prompt_folder(path) -> str:
    """A folder holding a file for every prompt of the catalogue, as the built prompts do: the
    controller plays only the prompts it finds (e.g. the position and wait announcements)."""
    path.mkdir(parents=True, exist_ok=True)
    for name in Catalogue.load().names():
        (path / f"{name}.wav").write_bytes(b"RIFF")
    return str(path)


def make_harness(tmp_path, secretaries=None, prompt_dir=None, dialplans=None, **settings) -> tuple[Harness, Any]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    prompt_dir = prompt_dir or prompt_folder(tmp_path / "prompts")
    settings.setdefault("login_required", False)  # tests/controller/test_secretaries.py covers logins
    ctx = fresh_database("sqlite", tmp_path)
    db = ctx.__enter__()
    calls = CallRepository(db)
    recorder = CallRecorder(calls)
    recorder.start()
    clock = Clock()
    clock.advance(MONDAY_10_PARIS.timestamp())
    published = RecordingPublisher()
    media = FakeMedia(published)
    router = Router(dialplans if dialplans is not None else examples().values())
    escalations: list = []
    controller_settings = ControllerSettings(
        secretaries=secretaries if secretaries is not None else {"*": ("sip:sec1@127.0.0.1:5090",)},
        voicemail_dir=tmp_path / "voicemail", **settings)
    metrics, events, legs = Metrics(), EventNotifier(published, "n1", clock), LegRouter()
    desk = Desk(controller_settings, clock, metrics, events)
    controller = CallController(
        clock, media, recorder, lambda: router, lambda name, practice: f"{prompt_dir}/{name}.wav",
        controller_settings, desk, legs, metrics, escalate=lambda s, tier: escalations.append((s.call_id, tier)),
        events=events, tasks=TaskRepository(db))
    h = Harness(controller, desk, legs, media, clock, recorder, calls, escalations, published, TaskRepository(db))
    return h, ctx


@pytest.fixture
def harness(tmp_path):
    h, ctx = make_harness(tmp_path)
    yield h
    h.recorder.stop()
    ctx.__exit__(None, None, None)


@pytest.fixture
def make(tmp_path):
    made = []

    def build(**kw):
        h, ctx = make_harness(tmp_path / f"h{len(made)}", **kw)
        made.append((h, ctx))
        return h

    yield build
    for h, ctx in made:
        h.recorder.stop()
        ctx.__exit__(None, None, None)
