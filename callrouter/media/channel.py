"""The local channel between the controller and the media service (`callrouter media`).

The media service holds the worker processes and their pipes, so that they outlive a restart of
the controller; the controller reaches them over one stream (a unix socket, `var_dir/media.sock`)
speaking the workers' own JSON lines (protocol.py), each prefixed with the worker it concerns::

    w0 {"v":1,"type":"play","leg":"w0-4242-1","path":"/srv/prompts/welcome.wav","loop":false}
    w0 {"v":1,"type":"digit","leg":"w0-4242-1","digit":"3","method":"rfc4733"}

The service passes these lines on without reading them. Lines prefixed `-` are the channel's own
control messages (one JSON object each, `"v": 1` and a `"type"`):

controller -> service
  hello                          who is there? answered by `workers`
  spawn {worker, args}           start a worker with these arguments (see WORKER_FLAGS)
  close_stdin {worker}           end of commands: the worker hangs up and exits
  signal {worker, signal}        KILL or TERM
service -> controller
  workers {workers: [{worker, pid, args, ready}]}   the live workers, `ready` their ready line
  spawned {worker, pid}          a worker process started
  exited {worker, code, signal}  a worker process ended (code or signal may be null)

One controller at a time: a new connection replaces the previous one. Events of a worker while no
controller is connected are dropped (the new controller asks each worker for its legs, leg_report).
This module is pure: both ends and the tests share it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from callrouter.media.messages import ProtocolError

CONTROL = "-"
VERSION = 1
CONTROLS_IN = ("hello", "spawn", "close_stdin", "signal")      # to the service
CONTROLS_OUT = ("workers", "spawned", "exited")                # from the service
SIGNALS = ("KILL", "TERM")
# The only arguments a `spawn` may give the worker (each followed by its value): the channel
# starts `python -m callrouter.media.worker`, nothing else.
WORKER_FLAGS = frozenset({"--name", "--sip-port", "--rtp-port", "--rtp-port-range", "--bind", "--pj-log-level"})
WORKER_MODULE = ("-m", "callrouter.media.worker")


@dataclass(frozen=True)
class LiveWorker:
    """A worker the service holds, as a (re)connecting controller learns of it."""

    worker: str
    pid: int
    args: tuple[str, ...]
    ready: bytes | None  # its `ready` event line, once it sent it


def frame(worker: str, line: bytes) -> bytes:
    """A worker's line (with its newline) on the channel."""
    return worker.encode("ascii") + b" " + line


def control(kind: str, **fields: Any) -> bytes:
    return CONTROL.encode() + b" " + json.dumps({"v": VERSION, "type": kind, **fields},
                                                separators=(",", ":")).encode() + b"\n"


def split(line: bytes) -> tuple[str, bytes]:
    """(worker or CONTROL, the rest of the line) of one channel line (without its newline)."""
    head, sep, rest = line.partition(b" ")
    if not sep or not head:
        raise ProtocolError("a channel line is '<worker> <message>'")
    try:
        name = head.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("a worker name is ASCII") from None
    return name, rest


def decode_control(body: bytes, known: tuple[str, ...]) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError(f"control line is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("v") != VERSION or data.get("type") not in known:
        raise ProtocolError(f"unknown control message {str(body)[:80]}")
    return data


def worker_args(argv: list[str]) -> list[str]:
    """The worker's own arguments from the pool's command line (`python -m callrouter.media.worker
    ...`), checked against WORKER_FLAGS; ProtocolError otherwise."""
    if tuple(argv[1:3]) != WORKER_MODULE:
        raise ProtocolError("the media service starts callrouter.media.worker only")
    return checked_args(argv[3:])


def checked_args(args: list[Any]) -> list[str]:
    if len(args) % 2 or not all(isinstance(a, str) for a in args):
        raise ProtocolError("worker arguments come as flag/value pairs of strings")
    for flag in args[::2]:
        if flag not in WORKER_FLAGS:
            raise ProtocolError(f"worker argument {flag!r} not allowed")
    return list(args)


def name_of(args: list[str]) -> str:
    return args[args.index("--name") + 1] if "--name" in args else ""
