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
  (the WAV file is complete when reported); a conversation recording (`record_call`) ends with
  `call_recording_finished`, whose `leg` is the recording's own id, once both files are complete.
- A `dial` that cannot even start (every call slot taken) ends at once: `leg_ended` 486 by "worker".
- End of stdin (or SIGTERM) stops the worker: it hangs up its legs, reports them, and exits 0.
  `retire` stops it gently: new calls are refused 503, and it exits 0 once its last leg ended.
- `report_legs` is answered by a `leg_report` per live leg then `legs_reported`: a controller
  taking over the worker (the media service keeps it across controller restarts) rebuilds its
  calls from them.
- `slots_held` says how many call slots pjsua still holds for legs already ended (a BYE not yet
  answered keeps one): sent before the `leg_ended` that raised it and whenever it changes
  (slot_events.py). A dial beyond `cap` minus the live legs and those fails as above.

This module is pure (no pjsua2, no Twisted): both ends and the tests share it. The messages
themselves are in messages.py; every name there is also a name of this module.
"""

from __future__ import annotations

import collections.abc
import functools
import json
import typing
from dataclasses import MISSING, fields
from typing import Any, Mapping

from callrouter.media.messages import (  # noqa: F401 - the contract's names, used as p.<name>
    DIGITS, LEG_STATES, DIGIT_METHODS, ProtocolError, Answer, Play, StopPlayback, Record,
    MISSED_CODES, DISPLAY_NAME_MAX, header_safe, display_name, Dial, Bridge, Unbridge, Transfer,
    Hangup, Ready, IncomingCall, Digit, PlaybackFinished, LegState, LegEnded, RecordingFinished,
    Error, Command, Event, Message, COMMANDS, EVENTS, RecordCall, StopCallRecording, CallRecordingFinished,
    RelayOpen, RelayConnect, RelayClose, RelayReady, RelayEnded, Retire, ReportLegs, LegReport, LegsReported,
)

VERSION = 1
MAX_LINE_BYTES = 64 * 1024
# One encoder, made once: json.dumps with arguments builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@functools.cache
def _schema(cls: type) -> tuple[tuple[tuple[str, type, bool], ...], frozenset[str]]:
    """(name, type, required) of each field of a message class, and their names, read once per
    class: resolving the annotations (`typing.get_type_hints`) for every line cost more than the
    rest of its decoding. A field's type is str, bool, int, float, or dict (a Mapping[str, str])."""
    hints = typing.get_type_hints(cls)
    schema = []
    for f in fields(cls):
        hint = hints[f.name]
        if typing.get_origin(hint) in (collections.abc.Mapping, dict):
            hint = dict
        elif hint not in (str, bool, int, float):
            raise TypeError(f"{cls.type}.{f.name}: unsupported field type {hint!r}")
        schema.append((f.name, hint, f.default is MISSING and f.default_factory is MISSING))
    return tuple(schema), frozenset(name for name, _, _ in schema)


# ---------------------------------------------------------------------------------------------
# Encoding and decoding


def encode(message: Message) -> bytes:
    """One message as one JSON line (with its trailing newline)."""
    body: dict[str, Any] = {"v": VERSION, "type": message.type}
    for key, hint, _ in _schema(type(message))[0]:
        value = getattr(message, key)
        body[key] = dict(value) if hint is dict else value
    line = _ENCODER.encode(body).encode("utf-8") + b"\n"
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
    schema, names = _schema(cls)
    if not names.issuperset(data):
        raise ProtocolError(f"{cls.type}: unknown field(s) {', '.join(sorted(set(data) - names))}")
    values: dict[str, Any] = {}
    for name, hint, required in schema:
        if name not in data:
            if required:
                raise ProtocolError(f"{cls.type}: missing field {name!r}")
            continue
        values[name] = _check_type(cls.type, name, data[name], hint)
    message = cls(**values)
    check = getattr(message, "check", None)
    if check is not None:
        check()
    return message


def _check_type(msg: str, name: str, value: Any, hint: type) -> Any:
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
    else:  # dict: an object of strings
        if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return dict(value)
        raise ProtocolError(f"{msg}: field {name!r} must be an object of strings")
    raise ProtocolError(f"{msg}: field {name!r} must be {hint.__name__}, not {type(value).__name__}")


class LineReader:
    """Splits a byte stream into lines; an over-long line is dropped (reported once), not kept."""

    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_bytes
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        if not self._buffer and not self._discarding and data.find(b"\n") == len(data) - 1 \
                and len(data) <= self._max + 1:  # the usual case: one whole line, nothing before it
            line = data[:-1].rstrip(b"\r")
            return [line] if line.strip() else []
        out: list[bytes | ProtocolError] = []
        self._buffer += data
        if b"\n" in data:  # every whole line at once (deleting each from the buffer was quadratic)
            *lines, rest = self._buffer.split(b"\n")
            self._buffer = bytearray(rest)
            for raw in lines:
                if self._discarding:  # the end of a line already reported
                    self._discarding = False
                    continue
                line = bytes(raw).rstrip(b"\r")
                if len(line) > self._max:
                    out.append(ProtocolError(f"line longer than {self._max} bytes dropped"))
                elif line.strip():
                    out.append(line)
        if len(self._buffer) > self._max:
            if not self._discarding:
                out.append(ProtocolError(f"line longer than {self._max} bytes dropped"))
            self._discarding = True
            self._buffer.clear()
        return out
