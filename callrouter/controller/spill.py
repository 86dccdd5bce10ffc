"""The call recorder's writes beyond its bound in memory, in an append-only file (var/).

During a database outage the recorder's queue grows with every call (about 13 writes an answered
call). Past `record_spill_bound` writes in memory, the recorder appends the next ones here, one
JSON line each, and reads them back in the same order once the queue before them is written; the
file is removed once read to its end. The writes still queued when the controller stops are saved
here too, ahead of the rest, with the leg ids already known: the next start writes them first.

A line names a store method and its arguments (datetimes tagged `{"$dt": ISO}`), or a method of a
named target (`targets`, e.g. the callback tasks' repository). What cannot be written so (a flush
marker, a job of an unnamed object) stays in memory and the line holds its place in the order
(such a write is lost if the controller stops before it is stored: none of the call records is).
If the disk refuses a line, that write and the next ones stay in memory, behind the file's, until
it is read to its end. The file is the service's own, in its var_dir: it is read back as data,
never run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any, BinaryIO, Mapping

logger = logging.getLogger("callrouter.controller.recorder")

Item = tuple  # (name, args, kwargs), as the recorder queues it


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    raise TypeError(type(value).__name__)


def _hook(obj: dict) -> Any:
    if len(obj) == 1 and "$dt" in obj:
        return dt.datetime.fromisoformat(obj["$dt"])
    return obj


class Spill:
    def __init__(self, path: Path, targets: Mapping[str, object] | None = None) -> None:
        self.path = Path(path)
        self._targets = dict(targets or {})
        self._held: dict[int, Item] = {}
        self._next_held = 0
        self._writer: BinaryIO | None = None
        self._reader: BinaryIO | None = None
        self._file_unread = 0
        self._tail: list[Item] = []  # after a write the disk refused: in memory, behind the file
        self.saved = False  # by a recorder that stopped: no longer read, for the next start
        if self.path.exists():
            with self.path.open("rb") as f:
                self._file_unread = sum(1 for line in f if line.endswith(b"\n"))

    @property
    def unread(self) -> int:
        return self._file_unread + len(self._tail)

    # -- writing -----------------------------------------------------------------------------

    def append(self, item: Item) -> None:
        if not self._tail:
            line = self._line(item)
            try:
                if self._writer is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._writer = self.path.open("ab")
                self._writer.write(line)
                self._writer.flush()  # in the kernel's hands: a crash of the controller loses nothing
                self._file_unread += 1
                return
            except OSError as exc:
                logger.error("call record spill %s refused a write (%s): the next ones are kept in memory",
                             self.path, exc)
        self._tail.append(item)

    def _line(self, item: Item) -> bytes:
        name, args, kwargs = item
        record: dict[str, Any] | None
        if name == "_call":
            fn, fargs, fkwargs = args
            # A method of a target, or a wrapper of one (callrouter.events.task_feed announces the
            # callback tasks' changes: replayed, the change is stored, not announced).
            owner = getattr(fn, "__self__", None) or getattr(getattr(fn, "__wrapped__", None), "__self__", None)
            target = next((key for key, obj in self._targets.items() if owner is obj), None)
            record = None if target is None else {"call": [target, fn.__name__], "a": fargs, "k": fkwargs}
        elif name == "_mark":
            record = None
        else:
            record = {"w": name, "a": args, "k": kwargs}
        if record is not None:
            try:
                return json.dumps(record, default=_default, ensure_ascii=False).encode("utf-8") + b"\n"
            except (TypeError, ValueError):
                pass
        self._next_held += 1
        self._held[self._next_held] = item
        return json.dumps({"held": self._next_held}).encode() + b"\n"

    def save(self, front: list[Item], legs: Mapping[str, int]) -> None:
        """Put `front` (the writes still queued in memory, in order) and the leg ids known ahead of
        what the file holds, for the next start (the recorder stops)."""
        rest = self.read(self.unread) if self.unread else []
        self.close()
        lines = [json.dumps({"legs": dict(legs)}).encode() + b"\n"] if legs else []
        lines += [self._line(item) for item in [*front, *rest] if item[0] not in ("_mark", "_spilled")]
        staged = self.path.with_name(self.path.name + ".new")
        staged.write_bytes(b"".join(lines))
        staged.replace(self.path)
        self._file_unread = len(lines)
        self.saved = True

    # -- reading -----------------------------------------------------------------------------

    def read(self, limit: int) -> list[Item]:
        """Up to `limit` writes, in order, from where the last read stopped."""
        out: list[Item] = []
        if self.saved:
            return out
        if self._file_unread > 0:
            if self._writer is not None:
                self._writer.flush()
            if self._reader is None:
                self._reader = self.path.open("rb")
        while len(out) < limit and self._file_unread > 0:
            line = self._reader.readline()
            if not line.endswith(b"\n"):  # cut short by a crash while it was written: the end
                logger.error("call record spill %s ends in a partial line", self.path)
                self._file_unread = 0
                break
            self._file_unread -= 1
            item = self._item(line)
            if item is not None:
                out.append(item)
        while len(out) < limit and self._file_unread == 0 and self._tail:
            out.append(self._tail.pop(0))
        return out

    def _item(self, line: bytes) -> Item | None:
        try:
            record = json.loads(line, object_hook=_hook)
        except ValueError:
            logger.error("call record spill %s: an unreadable line skipped", self.path)
            return None
        if "held" in record:
            item = self._held.pop(record["held"], None)
            if item is None:
                logger.error("call record spill %s: a write held in the memory of a controller now gone is lost",
                             self.path)
            return item
        if "legs" in record:
            return ("_legs_known", (record["legs"],), {})
        if "call" in record:
            target, method = record["call"]
            obj = self._targets.get(target)
            if obj is None:
                logger.error("call record spill: a write to %s, unknown here, skipped", target)
                return None
            return ("_call", (getattr(obj, method), tuple(record["a"]), record["k"]), {})
        return (record["w"], tuple(record["a"]), record["k"])

    def clear(self) -> None:
        """Read to its end: the file goes."""
        self.close()
        self.path.unlink(missing_ok=True)
        self._held.clear()
        self._file_unread = 0

    def close(self) -> None:
        for f in (self._writer, self._reader):
            if f is not None:
                f.close()
        self._writer = self._reader = None
