"""The CLI as a test drives it: a database handed over through the environment, `var/` under the
test's directory, stdin given as text."""

from __future__ import annotations

import io
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from callrouter.cli import main
from callrouter.store.db import Database
from callrouter.store.testing import fresh_database


def hand_to_cli(monkeypatch: pytest.MonkeyPatch, db: Database, cwd: Path) -> None:
    """`callrouter ...` run in this process uses `db` and keeps its `var/` (key files) in `cwd`."""
    monkeypatch.setenv("CALLROUTER_DATABASE_URL", db.url)
    monkeypatch.delenv("CALLROUTER_CONFIG", raising=False)
    monkeypatch.chdir(cwd)


@contextmanager
def cli_database(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 migrate: bool = True) -> Iterator[Database]:
    with fresh_database(kind, tmp_path, migrate=migrate) as db:
        hand_to_cli(monkeypatch, db, tmp_path)
        yield db


def run(*argv: str, stdin: str = "") -> int:
    """`callrouter <argv>` in this process, reading `stdin`; its exit status."""
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return main(list(argv))
    finally:
        sys.stdin = old
