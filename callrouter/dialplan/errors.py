"""Dialplan errors: every one names the file, the line, where in the document, and what is wrong."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True, order=True)
class DialplanError:
    file: str
    line: int
    path: str  # where in the document, e.g. "ivr.triage.options.3"
    message: str

    def __str__(self) -> str:
        where = f" {self.path}:" if self.path else ""
        return f"{self.file}:{self.line}:{where} {self.message}"


class DialplanInvalid(Exception):
    """A set of dialplan errors, all of them at once."""

    def __init__(self, errors: Iterable[DialplanError]):
        self.errors = sorted(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' when a choice is close to the word, else ''."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f' (did you mean "{match[0]}"?)' if match else ""
