"""A real part a test needs and the machine lacks: under CI (`CI` set) the test fails with the
reason, elsewhere it skips. Said at the place the test finds the part missing, so that the guard
does not rest on the report hook of tests/conftest.py alone.

- `missing(reason)` inside a test or fixture;
- `@pytest.mark.needs(condition_missing, reason=...)` on a test or a module's `pytestmark`.
"""

from __future__ import annotations

import os

import pytest


def under_ci() -> bool:
    return bool(os.environ.get("CI"))


def missing(reason: str) -> None:
    if under_ci():
        pytest.fail(f"{reason}; CI must have every part the tests use (scripts/ensure-system-deps)")
    pytest.skip(reason)
