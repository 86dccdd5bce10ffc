"""A call as the decision core sees it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Call:
    """The number dialled, the caller (may be withheld) and the IVR choices made so far."""

    number: str
    caller: str | None = None
    digits: tuple[str, ...] = ()

    def with_digit(self, digit: str) -> "Call":
        return Call(self.number, self.caller, (*self.digits, digit))


def mask_number(number: str | None) -> str:
    """A phone number fit for a log line: country prefix and last two digits only."""
    if not number:
        return "anonymous"
    digits = number.strip()
    if len(digits) <= 4:
        return "*" * len(digits)
    head = 3 if digits.startswith("+") else 2
    return digits[:head] + "*" * (len(digits) - head - 2) + digits[-2:]
