"""A call as the decision core sees it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Call:
    """The number dialled, the caller (may be withheld) and the IVR choices made so far.

    `arrived_at` is the instant the call arrived: the calendar is read at that instant for the
    whole call, so the digits are resolved against the menus the caller heard (see `decide()`).
    """

    number: str
    caller: str | None = None
    digits: tuple[str, ...] = ()
    arrived_at: dt.datetime | None = None

    def with_digit(self, digit: str) -> "Call":
        return replace(self, digits=(*self.digits, digit))


def mask_number(number: str | None) -> str:
    """A phone number fit for a log line: country prefix and last two digits only."""
    if not number:
        return "anonymous"
    digits = number.strip()
    if len(digits) <= 4:
        return "*" * len(digits)
    head = 3 if digits.startswith("+") else 2
    return digits[:head] + "*" * (len(digits) - head - 2) + digits[-2:]
