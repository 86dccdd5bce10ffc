"""The messages of the worker RPC (protocol.py): the commands the controller sends, the events a
worker reports, each a frozen dataclass that checks its own values (`check`, run when decoded).
Pure: no pjsua2, no Twisted, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Mapping, Union, get_args

from callrouter.media.slot_events import SlotsHeld

DIGITS = frozenset("0123456789*#ABCD")
LEG_STATES = ("ringing", "early", "confirmed")
DIGIT_METHODS = ("rfc4733", "info")


class ProtocolError(ValueError):
    """A line that is not a valid message; the reader reports it and goes on with the next line."""


# ---------------------------------------------------------------------------------------------
# Commands: controller -> worker


@dataclass(frozen=True)
class Answer:
    """Answer an incoming leg: 200 (connect), or 180/183 (ringing / early media, no connect)."""

    type: ClassVar[str] = "answer"
    leg: str
    code: int = 200

    def check(self) -> None:
        if self.code not in (180, 183, 200):
            raise ProtocolError(f"answer: code must be 180, 183 or 200, not {self.code}")


@dataclass(frozen=True)
class Play:
    """Play a WAV file (8 kHz mono 16-bit) to a leg, once or looped, replacing what it played."""

    type: ClassVar[str] = "play"
    leg: str
    path: str
    loop: bool = False


@dataclass(frozen=True)
class StopPlayback:
    type: ClassVar[str] = "stop_playback"
    leg: str


@dataclass(frozen=True)
class Record:
    """Record what the leg says into a WAV file (voicemail).

    Stops at the first of: a digit in `stop_digits`, `silence_seconds` of continuous silence (0
    disables), `max_seconds`, or the leg ending; then `recording_finished` is reported.
    """

    type: ClassVar[str] = "record"
    leg: str
    path: str
    max_seconds: float = 120.0
    silence_seconds: float = 5.0
    stop_digits: str = "#"

    def check(self) -> None:
        if not 0 < self.max_seconds <= 3600:
            raise ProtocolError("record: max_seconds must be in (0, 3600]")
        if self.silence_seconds < 0:
            raise ProtocolError("record: silence_seconds must be >= 0")
        if not set(self.stop_digits) <= DIGITS:
            raise ProtocolError(f"record: stop_digits {self.stop_digits!r} holds a non-DTMF character")


@dataclass(frozen=True)
class RecordCall:
    """Record a bridged conversation from the conference bridge: what `leg` says into `path`,
    what `other` says into `other_path` (two mono WAV files started on the same turn of the loop,
    made one stereo file by the controller). Stops at the first of `max_seconds`, either leg
    ending, or `stop_call_recording`; then `call_recording_finished` is reported, its `leg` being
    `recording` (the id the controller routes it by)."""

    type: ClassVar[str] = "record_call"
    leg: str
    other: str
    recording: str
    path: str
    other_path: str
    max_seconds: float = 3600.0

    def check(self) -> None:
        if self.leg == self.other:
            raise ProtocolError("record_call: a leg cannot be recorded with itself")
        if self.path == self.other_path:
            raise ProtocolError("record_call: the two sides need two files")
        if not self.recording or self.recording in (self.leg, self.other):
            raise ProtocolError("record_call: recording must be an id of its own")
        if not 0 < self.max_seconds <= 4 * 3600:
            raise ProtocolError("record_call: max_seconds must be in (0, 14400]")


@dataclass(frozen=True)
class StopCallRecording:
    """Stop the conversation recording of `leg` (either of its two legs)."""

    type: ClassVar[str] = "stop_call_recording"
    leg: str


# Codes ending a dialled leg that mean the callee did not take the call: no answer, busy, declined.
MISSED_CODES = frozenset({408, 480, 486, 487, 600, 603})
DISPLAY_NAME_MAX = 80


def header_safe(text: str) -> str:
    """Text for a SIP header or display name: printable, no quotes, backslashes or line breaks."""
    return "".join(c for c in text if c.isprintable() and c not in '"\\\r\n')


def display_name(text: str) -> str:
    return header_safe(text)[:DISPLAY_NAME_MAX]


@dataclass(frozen=True)
class Dial:
    """Place a new outgoing leg, named `leg` by the controller, to a SIP URI."""

    type: ClassVar[str] = "dial"
    leg: str
    uri: str
    display_name: str = ""
    from_user: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 60.0

    def check(self) -> None:
        if not self.uri.startswith(("sip:", "sips:")):
            raise ProtocolError("dial: uri must be a sip: or sips: URI")
        for name, value in self.headers.items():
            if not name or any(c in name for c in ":\r\n ") or any(c in value for c in "\r\n"):
                raise ProtocolError(f"dial: bad header {name!r}")
        if any(c in self.display_name for c in '"\r\n\\'):
            raise ProtocolError("dial: display_name may not hold quotes, backslashes or newlines")
        if not 0 < self.timeout_seconds <= 600:
            raise ProtocolError("dial: timeout_seconds must be in (0, 600]")


@dataclass(frozen=True)
class Bridge:
    """Connect the audio of two legs of this worker both ways (stops what they were playing)."""

    type: ClassVar[str] = "bridge"
    leg: str
    other: str

    def check(self) -> None:
        if self.leg == self.other:
            raise ProtocolError("bridge: a leg cannot be bridged with itself")


@dataclass(frozen=True)
class Unbridge:
    type: ClassVar[str] = "unbridge"
    leg: str
    other: str


@dataclass(frozen=True)
class Transfer:
    """Blind transfer of an answered leg with REFER; the leg ends when the far end takes it."""

    type: ClassVar[str] = "transfer"
    leg: str
    uri: str

    def check(self) -> None:
        if not self.uri.startswith(("sip:", "sips:", "tel:")):
            raise ProtocolError("transfer: uri must be a sip:, sips: or tel: URI")


@dataclass(frozen=True)
class Hangup:
    """End a leg. `code` is the SIP status for a leg not yet answered (486, 480, 603...); an answered
    leg gets a BYE."""

    type: ClassVar[str] = "hangup"
    leg: str
    code: int = 603

    def check(self) -> None:
        if not 400 <= self.code <= 699:
            raise ProtocolError(f"hangup: code must be a SIP final failure code (400-699), not {self.code}")


# ---------------------------------------------------------------------------------------------
# Events: worker -> controller


@dataclass(frozen=True)
class Ready:
    """The worker listens; `cap` is how many legs it can hold at once (PJSUA_MAX_CALLS)."""

    type: ClassVar[str] = "ready"
    worker: str
    sip_port: int
    cap: int
    pid: int


@dataclass(frozen=True)
class IncomingCall:
    type: ClassVar[str] = "incoming_call"
    leg: str
    sip_call_id: str
    from_uri: str
    to_uri: str
    number: str
    caller: str
    caller_name: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Digit:
    type: ClassVar[str] = "digit"
    leg: str
    digit: str
    method: str = "rfc4733"

    def check(self) -> None:
        if self.digit not in DIGITS:
            raise ProtocolError(f"digit: {self.digit!r} is not a DTMF digit")
        if self.method not in DIGIT_METHODS:
            raise ProtocolError(f"digit: method must be one of {', '.join(DIGIT_METHODS)}")


@dataclass(frozen=True)
class PlaybackFinished:
    """A `play` that was not looped reached its end (not sent when stopped or replaced)."""

    type: ClassVar[str] = "playback_finished"
    leg: str
    path: str


@dataclass(frozen=True)
class LegState:
    type: ClassVar[str] = "leg_state"
    leg: str
    state: str

    def check(self) -> None:
        if self.state not in LEG_STATES:
            raise ProtocolError(f"leg_state: state must be one of {', '.join(LEG_STATES)}")


@dataclass(frozen=True)
class LegEnded:
    """A leg is over. `code`/`reason` are the SIP status that ended it (200 for a normal BYE after
    answer); `by` says who ended it: "remote", "local" (a hangup command) or "worker"."""

    type: ClassVar[str] = "leg_ended"
    leg: str
    code: int
    reason: str = ""
    by: str = "remote"


@dataclass(frozen=True)
class RecordingFinished:
    type: ClassVar[str] = "recording_finished"
    leg: str
    path: str
    duration: float
    reason: str  # "digit", "silence", "max_duration", "leg_ended", "stopped"


@dataclass(frozen=True)
class CallRecordingFinished:
    """A conversation recording is over and both its files are complete. `leg` is the
    recording's id (record_call's `recording`); reason: "stopped", "leg_ended", "max_duration"."""

    type: ClassVar[str] = "call_recording_finished"
    leg: str
    path: str
    other_path: str
    duration: float
    reason: str


# ---------------------------------------------------------------------------------------------
# Relays: the pool joining two legs of two workers (worker/relay.py); the controller never sees them


@dataclass(frozen=True)
class RelayOpen:
    """Open this worker's end of relay `relay` for `leg` (which stops what it was playing); its
    RTP port is reported with `relay_ready`."""

    type: ClassVar[str] = "relay_open"
    relay: str
    leg: str


@dataclass(frozen=True)
class RelayConnect:
    """The other end of `relay` listens on `port` (same host): the audio flows both ways."""

    type: ClassVar[str] = "relay_connect"
    relay: str
    port: int

    def check(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ProtocolError(f"relay_connect: port {self.port} is not a port")


@dataclass(frozen=True)
class RelayClose:
    type: ClassVar[str] = "relay_close"
    relay: str


@dataclass(frozen=True)
class Retire:
    """The pool retires this worker: from now on it refuses new calls (503, the edge tries another
    worker) and exits once it holds no leg. Its own legs go on until they end."""

    type: ClassVar[str] = "retire"


@dataclass(frozen=True)
class ReportLegs:
    """A `leg_report` per live leg, then `legs_reported` (for a controller taking over)."""
    type: ClassVar[str] = "report_legs"


@dataclass(frozen=True)
class LegReport:
    """One live leg: `outgoing` if dialled; `state` "" before any; `bridged` the legs of this worker
    it hears, `relays` those joining it to other workers (comma-separated); `playing` a file."""

    type: ClassVar[str] = "leg_report"
    leg: str
    sip_call_id: str
    peer: str
    outgoing: bool
    state: str = ""
    bridged: str = ""
    relays: str = ""
    playing: str = ""

    def check(self) -> None:
        if self.state and self.state not in LEG_STATES:
            raise ProtocolError(f"leg_report: state must be empty or one of {', '.join(LEG_STATES)}")


@dataclass(frozen=True)
class LegsReported:
    type: ClassVar[str] = "legs_reported"
    count: int


@dataclass(frozen=True)
class RelayReady:
    type: ClassVar[str] = "relay_ready"
    relay: str
    port: int


@dataclass(frozen=True)
class RelayEnded:
    """The worker closed its end by itself (its leg ended)."""

    type: ClassVar[str] = "relay_ended"
    relay: str
    reason: str = ""


@dataclass(frozen=True)
class Error:
    """A command that could not be executed, or a line that could not be read."""

    type: ClassVar[str] = "error"
    message: str
    command: str = ""
    leg: str = ""


Command = Union[Answer, Play, StopPlayback, Record, Dial, Bridge, Unbridge, Transfer, Hangup, RecordCall,
                StopCallRecording, RelayOpen, RelayConnect, RelayClose, Retire, ReportLegs]
Event = Union[Ready, IncomingCall, Digit, PlaybackFinished, LegState, LegEnded, RecordingFinished, Error,
              CallRecordingFinished, RelayReady, RelayEnded, LegReport, LegsReported, SlotsHeld]
Message = Union[Command, Event]

COMMANDS: Mapping[str, type] = {c.type: c for c in get_args(Command)}
EVENTS: Mapping[str, type] = {e.type: e for e in get_args(Event)}
