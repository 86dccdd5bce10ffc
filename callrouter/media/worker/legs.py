"""A media worker's legs and the media attached to them: players, recordings, bridges, hangups,
and their deadlines (dial timeouts, recording limits), checked when the loop wakes for them
(`next_deadline`) or for anything else."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pjsua2 as pj

from callrouter.media import protocol as p
from callrouter.media.worker.call_recording import CallRecordings
from callrouter.media.worker.pjsua import Call, Player, Post
from callrouter.media.worker.relay import Relays

logger = logging.getLogger(__name__)

SILENCE_LEVEL = 3           # signal level (0-255; speech measured at 6-32) at or under which is silence
RECORDING_CHECK_S = 0.1     # how often a recording's level, limit and closing file are looked at


class Refused(Exception):
    """A command that cannot be executed in the leg's current state."""


@dataclass
class Recording:
    path: str
    recorder: Any
    started: float
    max_seconds: float
    silence_seconds: float
    stop_digits: str
    quiet_since: float


@dataclass
class Leg:
    """One SIP dialog of this worker and the media attached to it."""

    id: str
    call: Call
    outgoing: bool
    media: Any = None                 # pj.AudioMedia once the audio stream is active
    player: Any = None
    player_path: str = ""
    player_loop: bool = False
    player_token: int = 0
    pending_play: tuple[str, bool] | None = None
    recording: Recording | None = None
    bridged: set[str] = field(default_factory=set)
    reported_state: str = ""
    local_hangup: bool = False
    transferred: bool = False
    deadline: float | None = None     # dial timeout
    ended: bool = False


class Legs:
    """The live legs by id, the legs ended but not yet dropped, and the recordings whose file is
    still being closed. Events go out through `emit`; players post their end through `post`."""

    def __init__(self, emit: Callable[[p.Event], None], post: Post, relays: Relays) -> None:
        self._emit, self._post = emit, post
        self.relays = relays  # legs joined to legs of other workers (relay.py)
        self.live: dict[str, Leg] = {}
        self.dead: list[Leg] = []
        self.closing: list[tuple[str, str, float, str, float]] = []
        self.conversations = CallRecordings(emit, wav_finalised)  # bridged calls recorded (record_call)
        self._tokens = 0

    def busy(self) -> bool:
        return bool(self.live or self.closing or self.conversations.busy() or self.relays.busy())

    def media_active(self) -> bool:
        """Some leg has audio in the conference bridge, or a recording's file is being closed:
        the bridge's clock must run."""
        return self.busy() and (bool(self.closing) or self.conversations.busy() or self.relays.busy()
                                or any(leg.media is not None for leg in self.live.values()))

    def next_deadline(self, now: float) -> float | None:
        """When `tick` has something to do next (None: nothing is timed). Recordings are looked at
        every RECORDING_CHECK_S while they run or close; a dial waits for its own timeout."""
        due = [leg.deadline for leg in self.live.values()
               if leg.deadline is not None and leg.reported_state != "confirmed"]
        if self.closing or self.conversations.busy() or any(leg.recording for leg in self.live.values()):
            due.append(now + RECORDING_CHECK_S)
        relay_due = self.relays.next_deadline()
        if relay_due is not None:
            due.append(relay_due)
        return min(due) if due else None

    def get(self, leg_id: str) -> Leg:
        """The live leg `leg_id`, or Refused."""
        leg = self.live.get(leg_id)
        if leg is None or leg.ended:
            raise Refused(f"no live leg {leg_id!r} on this worker")
        return leg

    def reap(self) -> None:
        # Call objects are dropped outside pjsua callbacks, once pjsua is done with them.
        self.dead.clear()

    def stop_all(self) -> None:
        """Stop the media of every leg, each marked as hung up here (the worker is stopping)."""
        for leg in list(self.live.values()):
            leg.local_hangup = True
            self.stop_media(leg, "leg_ended")

    def tick(self, now: float) -> None:
        if self.closing:
            self._report_closed_recordings(now)
        self.conversations.tick(now, self.live)
        if self.relays.closing:
            self.relays.tick(now)
        for leg in list(self.live.values()):
            if leg.ended:
                continue
            if leg.deadline is not None and now >= leg.deadline and leg.reported_state != "confirmed":
                leg.deadline = None
                leg.local_hangup = True
                self.hangup(leg, 487)
            rec = leg.recording
            if rec is None:
                continue
            if now - rec.started >= rec.max_seconds:
                self.finish_recording(leg, "max_duration")
            elif rec.silence_seconds > 0 and leg.media is not None:
                # pjsua2 names levels from the bridge's side: the caller's voice is the "tx" level.
                if leg.media.getTxLevel() > SILENCE_LEVEL:
                    rec.quiet_since = now
                elif now - rec.quiet_since >= rec.silence_seconds:
                    self.finish_recording(leg, "silence")

    def hangup(self, leg: Leg, code: int) -> None:
        self.stop_media(leg, "leg_ended")
        prm = pj.CallOpParam(True)
        # An answered leg gets a BYE whatever the code; 0 lets pjsua record it as a normal clearing.
        prm.statusCode = 0 if leg.reported_state == "confirmed" else code
        leg.call.hangup(prm)

    def start_player(self, leg: Leg, path: str, loop: bool) -> None:
        self._tokens += 1
        player = Player(self._post, leg.id, self._tokens)
        player.createPlayer(path, 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(leg.media)
        leg.player, leg.player_path, leg.player_loop, leg.player_token = player, path, loop, self._tokens

    def stop_player(self, leg: Leg) -> None:
        leg.pending_play = None
        player, leg.player = leg.player, None
        if player is not None and leg.media is not None:
            try:
                player.stopTransmit(leg.media)
            except pj.Error:
                pass
        # dropping the last reference destroys the pjmedia player port

    def start_recording(self, leg: Leg, cmd: p.Record) -> None:
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(cmd.path)
        leg.media.startTransmit(recorder)
        now = time.monotonic()
        leg.recording = Recording(cmd.path, recorder, now, cmd.max_seconds, cmd.silence_seconds,
                                  cmd.stop_digits, now)

    def finish_recording(self, leg: Leg, reason: str) -> None:
        rec, leg.recording = leg.recording, None
        if rec is None:
            return
        if leg.media is not None:
            try:
                leg.media.stopTransmit(rec.recorder)
            except pj.Error:
                pass
        duration = round(time.monotonic() - rec.started, 2)
        # Dropping the recorder closes the file, but pjmedia removes conference ports
        # asynchronously: the WAV header is only final a few clock ticks later.
        rec.recorder = None
        self.closing.append((leg.id, rec.path, duration, reason, time.monotonic() + 2.0))

    def _report_closed_recordings(self, now: float) -> None:
        waiting = []
        for item in self.closing:
            leg_id, path, duration, reason, deadline = item
            if wav_finalised(path) or now >= deadline:
                self._emit(p.RecordingFinished(leg=leg_id, path=path, duration=duration, reason=reason))
            else:
                waiting.append(item)
        self.closing = waiting

    def bridge(self, a: Leg, b: Leg) -> None:
        for leg in (a, b):
            self.stop_player(leg)
        a.media.startTransmit(b.media)
        b.media.startTransmit(a.media)
        a.bridged.add(b.id)
        b.bridged.add(a.id)

    def unbridge(self, a: Leg, b: Leg) -> None:
        if a.media is not None and b.media is not None:
            for src, dst in ((a.media, b.media), (b.media, a.media)):
                try:
                    src.stopTransmit(dst)
                except pj.Error:
                    pass
        a.bridged.discard(b.id)
        b.bridged.discard(a.id)

    def stop_media(self, leg: Leg, reason: str) -> None:
        self.stop_player(leg)
        self.finish_recording(leg, reason)
        self.conversations.leg_stopped(leg.id, self.live)
        self.relays.leg_stopped(leg.id)
        for other_id in list(leg.bridged):
            other = self.live.get(other_id)
            if other is not None:
                self.unbridge(leg, other)
        leg.bridged.clear()


def wav_finalised(path: str) -> bool:
    """True once the RIFF size field of a WAV file is filled in (it is 0 while recording)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return True  # nothing more will happen to it
    return len(head) == 8 and head[4:8] != b"\0\0\0\0"
