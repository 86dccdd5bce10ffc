"""Hostile SIP input against a real `callrouter serve` (Kamailio edge, pjsua2 workers, controller):
one service per test module, started on free loopback ports and stopped after, with nothing left
running."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from callrouter.devtools.serve import ServeProcess
from callrouter.devtools.sipfuzz_service import start_service
from tests.app.conftest import prompts_built  # noqa: F401 - the fixture, for the modules here

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def hostile_service(root: Path, trunk_ip: str = "127.0.0.1") -> Iterator[ServeProcess]:
    """The service of sipfuzz_service.start_service (one practice, two workers, the edge with
    `trunk_ip` trusted), stopped after: every process it started must be gone."""
    if shutil.which("kamailio") is None or shutil.which("sipp") is None:
        pytest.fail("kamailio and sipp are needed (scripts/ensure-system-deps)")
    svc = start_service(root, trunk_ip)
    try:
        yield svc
    finally:
        stray = svc.stop()
        assert not stray, f"processes left running after stop (Kamailio included): {stray}"
