"""A media worker's conversation recordings: two legs bridged in the conference, each side's voice
into a mono WAV file of its own, started on the same turn of the loop (one conference clock), so
the controller can lay them side by side as one stereo file (the caller left, the secretary right).

pjmedia's file writer takes the frames a conference port sends it: `leg.media.startTransmit(rec)`
records what that leg's far end says. A recording stops on `stop_call_recording`, at its
`max_seconds`, when either leg ends, or when the worker stops; its files are complete a few clock
ticks after their writers are dropped (pjmedia removes conference ports asynchronously), and only
then is `call_recording_finished` reported, named by the recording's own id.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import pjsua2 as pj

from callrouter.media import protocol as p

logger = logging.getLogger(__name__)

CLOSE_WAIT_S = 2.0


@dataclass
class ConversationRecording:
    id: str
    leg: str
    other: str
    paths: tuple[str, str]
    recorders: list[Any]
    started: float
    max_seconds: float


class CallRecordings:
    """The conversation recordings of one worker, by id; `legs` maps a leg id to its Leg."""

    def __init__(self, emit: Callable[[p.Event], None], finalised: Callable[[str], bool]) -> None:
        self._emit, self._finalised = emit, finalised
        self.active: dict[str, ConversationRecording] = {}
        self.closing: list[tuple[ConversationRecording, float, str, float]] = []  # rec, duration, reason, deadline

    def busy(self) -> bool:
        return bool(self.active or self.closing)

    def of_leg(self, leg_id: str) -> ConversationRecording | None:
        return next((r for r in self.active.values() if leg_id in (r.leg, r.other)), None)

    def start(self, a: Any, b: Any, cmd: p.RecordCall) -> None:
        """Record legs `a` and `b` (Leg objects with live media, bridged together)."""
        recorders = []
        for leg, path in ((a, cmd.path), (b, cmd.other_path)):
            recorder = pj.AudioMediaRecorder()
            recorder.createRecorder(path)
            recorders.append((leg, recorder))
        for leg, recorder in recorders:  # both on this turn of the loop: one clock for the two files
            leg.media.startTransmit(recorder)
        self.active[cmd.recording] = ConversationRecording(cmd.recording, a.id, b.id, (cmd.path, cmd.other_path),
                                                           [r for _, r in recorders], time.monotonic(), cmd.max_seconds)
        logger.info("recording the conversation of %s and %s (%s)", a.id, b.id, cmd.recording)

    def stop(self, rec: ConversationRecording, reason: str, legs: dict[str, Any]) -> None:
        self.active.pop(rec.id, None)
        for leg_id, recorder in zip((rec.leg, rec.other), rec.recorders):
            leg = legs.get(leg_id)
            if leg is not None and leg.media is not None:
                try:
                    leg.media.stopTransmit(recorder)
                except pj.Error:
                    pass
        rec.recorders = []  # dropping the writers closes the files (their headers a few ticks later)
        now = time.monotonic()
        self.closing.append((rec, round(now - rec.started, 2), reason, now + CLOSE_WAIT_S))

    def leg_stopped(self, leg_id: str, legs: dict[str, Any]) -> None:
        """A leg's media stops (it ended, or the worker stops): its recording ends with it."""
        rec = self.of_leg(leg_id)
        if rec is not None:
            self.stop(rec, "leg_ended", legs)

    def media_changed(self, leg: Any) -> None:
        """The leg's audio came back on a new conference port (a re-INVITE): its side is fed again."""
        rec = self.of_leg(leg.id)
        if rec is not None and leg.media is not None:
            leg.media.startTransmit(rec.recorders[0 if leg.id == rec.leg else 1])

    def tick(self, now: float, legs: dict[str, Any]) -> None:
        for rec in list(self.active.values()):
            if now - rec.started >= rec.max_seconds:
                self.stop(rec, "max_duration", legs)
        if not self.closing:
            return
        waiting = []
        for item in self.closing:
            rec, duration, reason, deadline = item
            if all(self._finalised(path) for path in rec.paths) or now >= deadline:
                self._emit(p.CallRecordingFinished(leg=rec.id, path=rec.paths[0], other_path=rec.paths[1],
                                                   duration=duration, reason=reason))
            else:
                waiting.append(item)
        self.closing = waiting
