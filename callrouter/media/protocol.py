"""The local RPC between the controller and a media worker: commands in, events out.

Wire format (version 1): newline-delimited JSON over the worker's stdin (commands) and stdout
(events); the worker logs on stderr only. One message is one JSON object on one line, at most
`MAX_LINE_BYTES` long, with `"v": 1`, a `"type"` naming the message and the message's fields::

    {"v": 1, "type": "play", "leg": "w5070-1", "path": "/srv/prompts/welcome.wav", "loop": false}
    {"v": 1, "type": "digit", "leg": "w5070-1", "digit": "3", "method": "rfc4733"}

Legs are named by strings: the worker names the legs it receives (`incoming_call.leg`, unique
across restarts: name-pid-sequence); the controller names the legs it dials (`dial.leg`). A worker
never decides anything: it executes commands and reports what happened. A bad command gets an
`error` event, never a crash.

What the controller can rely on:
- `ready` is the first event; `cap` is the most legs the worker holds at once (a bridged call
  takes two, on the same worker). An INVITE beyond the cap is refused 486 by the worker itself.
- Digits are always reported (`digit`), whatever is playing or recording.
- `leg_state` only moves forward (ringing/early -> confirmed); a 180 after the 200 is ignored.
- `leg_ended` is the last event about a leg, except `recording_finished`, which may follow it
  (the WAV file is complete when reported).
- A `dial` that cannot even start (every call slot taken) ends at once: `leg_ended` 486 by "worker".
- End of stdin (or SIGTERM) stops the worker: it hangs up its legs, reports them, and exits 0.

This module is pure (no pjsua2, no Twisted): both ends and the tests share it.
"""

from __future__ import annotations

import collections.abc
import json
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, ClassVar, Mapping, Union

VERSION = 1
MAX_LINE_BYTES = 64 * 1024
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
class Error:
    """A command that could not be executed, or a line that could not be read."""

    type: ClassVar[str] = "error"
    message: str
    command: str = ""
    leg: str = ""


Command = Union[Answer, Play, StopPlayback, Record, Dial, Bridge, Unbridge, Transfer, Hangup]
Event = Union[Ready, IncomingCall, Digit, PlaybackFinished, LegState, LegEnded, RecordingFinished, Error]
Message = Union[Command, Event]

COMMANDS: Mapping[str, type] = {c.type: c for c in typing.get_args(Command)}
EVENTS: Mapping[str, type] = {e.type: e for e in typing.get_args(Event)}


# ---------------------------------------------------------------------------------------------
# Encoding and decoding


def encode(message: Message) -> bytes:
    """One message as one JSON line (with its trailing newline)."""
    body: dict[str, Any] = {"v": VERSION, "type": message.type}
    for key, value in asdict(message).items():
        body[key] = dict(value) if isinstance(value, Mapping) else value
    line = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError(f"{message.type}: message longer than {MAX_LINE_BYTES} bytes")
    return line


def decode_command(line: bytes | str) -> Command:
    return _decode(line, COMMANDS, "command")


def decode_event(line: bytes | str) -> Event:
    return _decode(line, EVENTS, "event")


def _decode(line: bytes | str, registry: Mapping[str, type], kind: str) -> Any:
    if isinstance(line, bytes):
        if len(line) > MAX_LINE_BYTES:
            raise ProtocolError(f"line longer than {MAX_LINE_BYTES} bytes")
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"line is not UTF-8: {exc}") from None
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError(f"line is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("a message must be a JSON object")
    version = data.pop("v", None)
    if version != VERSION:
        raise ProtocolError(f"unsupported protocol version {version!r} (this end speaks {VERSION})")
    name = data.pop("type", None)
    cls = registry.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ProtocolError(f"unknown {kind} type {name!r}; known: {', '.join(sorted(registry))}")
    return _build(cls, data)


def _build(cls: type, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ProtocolError(f"{cls.type}: unknown field(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, f in known.items():
        if name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ProtocolError(f"{cls.type}: missing field {name!r}")
            continue
        values[name] = _check_type(cls.type, name, data[name], hints[name])
    message = cls(**values)
    check = getattr(message, "check", None)
    if check is not None:
        check()
    return message


def _check_type(msg: str, name: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is str:
        if isinstance(value, str):
            return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
            return float(value)
    elif origin in (collections.abc.Mapping, dict):
        if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return dict(value)
        raise ProtocolError(f"{msg}: field {name!r} must be an object of strings")
    else:  # pragma: no cover - a message class with a field type this module does not handle
        raise TypeError(f"{msg}.{name}: unsupported field type {hint!r}")
    raise ProtocolError(f"{msg}: field {name!r} must be {getattr(hint, '__name__', hint)}, "
                        f"not {type(value).__name__}")


class LineReader:
    """Splits a byte stream into lines; an over-long line is dropped (reported once), not kept."""

    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_bytes
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        out: list[bytes | ProtocolError] = []
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > self._max:
                    if not self._discarding:
                        out.append(ProtocolError(f"line longer than {self._max} bytes dropped"))
                    self._discarding = True
                    self._buffer.clear()
                return out
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[:end + 1]
            if self._discarding:
                self._discarding = False
                continue
            if len(line) > self._max:
                out.append(ProtocolError(f"line longer than {self._max} bytes dropped"))
            elif line.strip():
                out.append(line)
