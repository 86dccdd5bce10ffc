"""Typed readers for dialplan values. Each returns the value, or None after recording an error."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable, Iterable, TypeVar

from callrouter.dialplan.errors import DialplanError, did_you_mean
from callrouter.dialplan.yamlsrc import YMap, YNode, YScalar, YSeq
from callrouter.domain.model import WEEKDAYS, TimeRange

T = TypeVar("T")

_DURATION = re.compile(r"^(?:(\d+)h)?\s*(?:(\d+)m(?!s))?\s*(?:(\d+)s)?$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_IDENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DIGITS = tuple("0123456789*#")


class Reader:
    """Collects every error of one file; readers never raise."""

    def __init__(self, file: str):
        self.file = file
        self.errors: list[DialplanError] = []

    def error(self, line: int, path: str, message: str) -> None:
        self.errors.append(DialplanError(self.file, line, path, message))

    # --- structure -----------------------------------------------------------------------------

    def mapping(self, node: YNode | None, path: str, allowed: Iterable[str] | None, required: Iterable[str] = (),
                line: int = 1) -> YMap | None:
        """A mapping with only `allowed` keys (None: any key) and all `required` ones."""
        if node is None:
            self.error(line, path, "is empty; a mapping was expected")
            return None
        if not isinstance(node, YMap):
            self.error(node.line, path, f"expected a mapping (key: value lines), got {describe(node)}")
            return None
        for key, kline in node.duplicates:
            self.error(kline, join(path, key), "is written twice; the second would silently win")
        for key in node.items if allowed is not None else ():
            allowed = tuple(allowed)
            if key not in allowed:
                self.error(node.key_lines[key], join(path, key),
                           f'unknown key "{key}"{did_you_mean(key, allowed)}; allowed here: {", ".join(allowed)}')
        for key in required:
            if key not in node.items:
                self.error(node.line, path, f'missing required key "{key}"')
        return node

    def named(self, node: YNode | None, path: str, line: int = 1) -> list[tuple[str, YNode, str]]:
        """The entries of a section keyed by names of the administrator's choosing (queues, menus...)."""
        if node is None:
            return []
        m = self.mapping(node, path, None, line=line)
        return [] if m is None else [(k, v, join(path, k)) for k, v in m.items.items()]

    def sequence(self, node: YNode | None, path: str) -> list[YNode]:
        if node is None:
            return []
        if isinstance(node, YSeq):
            return node.items
        self.error(node.line, path, f"expected a list, got {describe(node)}")
        return []

    # --- scalars -------------------------------------------------------------------------------

    def text(self, node: YNode | None, path: str, required: bool = True) -> str | None:
        if node is None or (isinstance(node, YScalar) and node.value is None):
            if required and node is not None:
                self.error(node.line, path, "must not be empty")
            return None
        if isinstance(node, YScalar) and isinstance(node.value, (str, int, float)) and not isinstance(node.value, bool):
            value = str(node.value).strip() if isinstance(node.value, str) else node.raw
            if required and not value:
                self.error(node.line, path, "must not be empty")
                return None
            return value
        self.error(node.line, path, f"expected a text, got {describe(node)}")
        return None

    def ident(self, node: YNode | None, path: str) -> str | None:
        value = self.text(node, path)
        if value is not None and not _IDENT.match(value):
            self.error(node.line, path, f'"{value}" is not a valid id: use lowercase letters, digits, "-" and "_"')
            return None
        return value

    def boolean(self, node: YNode | None, path: str, default: bool) -> bool:
        if node is None:
            return default
        if isinstance(node, YScalar) and isinstance(node.value, bool):
            return node.value
        self.error(node.line, path, f"expected true or false, got {describe(node)}")
        return default

    def integer(self, node: YNode | None, path: str, default: int, lo: int, hi: int) -> int:
        if node is None:
            return default
        if isinstance(node, YScalar) and isinstance(node.value, int) and not isinstance(node.value, bool):
            if lo <= node.value <= hi:
                return node.value
            self.error(node.line, path, f"must be between {lo} and {hi}, got {node.value}")
            return default
        self.error(node.line, path, f"expected a whole number, got {describe(node)}")
        return default

    def duration(self, node: YNode | None, path: str, default: float, hi: float = 7 * 86400) -> float:
        """Seconds, from a number of seconds or text like 90s, 3m, 1h30m."""
        if node is None:
            return default
        if isinstance(node, YScalar):
            value = node.value
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                seconds = float(value)
            elif isinstance(value, str) and (m := _DURATION.match(value.strip())) and any(m.groups()):
                h, mi, s = (int(g) if g else 0 for g in m.groups())
                seconds = float(h * 3600 + mi * 60 + s)
            else:
                self.error(node.line, path, f'"{node.raw}" is not a duration; write e.g. 6s, 90s, 3m or 1h30m')
                return default
            if not 0 <= seconds <= hi:
                self.error(node.line, path, f"duration must be between 0s and {int(hi)}s")
                return default
            return seconds
        self.error(node.line, path, f"expected a duration such as 90s or 3m, got {describe(node)}")
        return default

    def phone(self, node: YNode | None, path: str) -> str | None:
        value = self.text(node, path)
        if value is None:
            return None
        compact = value.replace(" ", "").replace(".", "")
        if not _E164.match(compact):
            hint = ""
            if compact.startswith("0") and len(compact) == 10:
                hint = f"; for a French number write +33{compact[1:]}"
            self.error(node.line, path, f'"{value}" is not a phone number in international form (+33...){hint}')
            return None
        return compact

    def time_of_day(self, text: str, line: int, path: str, allow_24: bool) -> int | None:
        m = _TIME.match(text.strip())
        if not m:
            self.error(line, path, f'"{text}" is not a time of day; write HH:MM, e.g. 08:30')
            return None
        h, mi = int(m.group(1)), int(m.group(2))
        if mi > 59 or h > 24 or (h == 24 and (mi or not allow_24)):
            self.error(line, path, f'"{text}" is not a valid time of day')
            return None
        return h * 60 + mi

    def time_range(self, node: YNode | None, path: str) -> TimeRange | None:
        """HH:MM-HH:MM; an end before the start crosses midnight; 24:00 ends at midnight."""
        value = self.text(node, path)
        if value is None:
            return None
        parts = value.replace(" ", "").split("-")
        if len(parts) != 2:
            self.error(node.line, path, f'"{value}" is not a time range; write e.g. 08:00-12:30 or 22:00-06:00')
            return None
        start = self.time_of_day(parts[0], node.line, path, allow_24=False)
        end = self.time_of_day(parts[1], node.line, path, allow_24=True)
        if start is None or end is None:
            return None
        if start == end:
            self.error(node.line, path, f'"{value}" is empty (starts and ends at the same time)')
            return None
        return TimeRange(start, end)

    def days(self, text: str, line: int, path: str) -> tuple[int, ...] | None:
        """mon-fri, sat, mon,wed,fri, sat-sun, fri-mon (wraps), daily."""
        out: list[int] = []
        spec = text.strip().lower()
        if spec in ("daily", "all", "mon-sun"):
            return tuple(range(7))
        for part in spec.split(","):
            part = part.strip()
            ends = part.split("-")
            if len(ends) > 2 or any(e not in WEEKDAYS for e in ends):
                bad = next((e for e in ends if e not in WEEKDAYS), part)
                self.error(line, path, f'"{part}" is not a day or day range{did_you_mean(bad, WEEKDAYS)}; '
                                       f"use mon, tue, wed, thu, fri, sat, sun, ranges like mon-fri, or daily")
                return None
            a = WEEKDAYS.index(ends[0])
            b = WEEKDAYS.index(ends[-1])
            i = a
            while True:
                if i not in out:
                    out.append(i)
                if i == b:
                    break
                i = (i + 1) % 7
        return tuple(sorted(out))

    def date_or_datetime(self, node: YNode | None, path: str) -> dt.date | dt.datetime | None:
        value = self.text(node, path)
        if value is None:
            return None
        try:
            if "T" in value or " " in value.strip():
                return dt.datetime.fromisoformat(value.strip().replace(" ", "T"))
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            self.error(node.line, path, f'"{value}" is not a date (2026-12-24) or a date and time (2026-12-24T12:00)')
            return None

    def one_of(self, node: YNode | None, path: str, choices: Iterable[str], default: str) -> str:
        if node is None:
            return default
        choices = tuple(choices)
        value = self.text(node, path)
        if value is None:
            return default
        if value not in choices:
            self.error(node.line, path, f'"{value}" is not one of {", ".join(choices)}{did_you_mean(value, choices)}')
            return default
        return value

    def each(self, node: YNode | None, path: str, fn: Callable[[YNode, str], T | None]) -> list[T]:
        out = []
        for i, item in enumerate(self.sequence(node, path)):
            value = fn(item, f"{path}[{i}]")
            if value is not None:
                out.append(value)
        return out


def join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def describe(node: YNode) -> str:
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    if node.value is None:
        return "nothing"
    if isinstance(node.value, bool):
        return f"{str(node.value).lower()}"
    return f'"{node.raw}"'
