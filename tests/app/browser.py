"""Debian's chromium, headless, driven by Playwright: the pages' tests share this one way to start it.

Flags as on this machine's closed network: no background connections, no component updates, no
sync (they would be refused, many at a time, and slow every start)."""

from __future__ import annotations

import shutil
from typing import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_or_fail():
    """Playwright and Debian's chromium; missing, a skip (which CI turns into a failure)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is missing: apt-get install chromium (scripts/ensure-system-deps)")
    return sync_api


def launched() -> Iterator:
    """A headless chromium for as long as the caller holds it (a module's fixture)."""
    sync_api = chromium_or_fail()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()
