"""The secretaries' logins and pauses kept across restarts in one JSON file (`state_file`), written
atomically on each change and read back when the desk is built."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable

from callrouter.domain.serving import Secretary

logger = logging.getLogger(__name__)


def read(path: Path | None) -> dict[str, dict[str, Any]]:
    """Secretary id -> what was saved of her; empty when there is no file or it cannot be read."""
    if path is None or not path.exists():
        return {}
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        logger.error("ignoring unreadable secretaries' state %s: %s", path, exc)
        return {}
    return {k: v for k, v in state.items() if isinstance(v, dict)} if isinstance(state, dict) else {}


def restore(secretary: Secretary, saved: dict[str, dict[str, Any]]) -> None:
    """Her saved login and pause, if any (a fixed phone is always logged in)."""
    mine = saved.get(secretary.id)
    if mine is None:
        return
    if secretary.username is not None:
        secretary.logged_in = bool(mine.get("logged_in", secretary.logged_in))
    paused = mine.get("paused")
    secretary.paused = paused if isinstance(paused, str) and paused else None
    secretary.auto_paused = secretary.paused is not None and mine.get("auto_paused") is True


def write(path: Path | None, secretaries: Iterable[Secretary]) -> None:
    if path is None:
        return
    state = {a.id: {"logged_in": a.logged_in, "paused": a.paused, "auto_paused": a.auto_paused} for a in secretaries}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, ensure_ascii=False, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError as exc:
        logger.error("cannot keep the secretaries' state in %s: %s", path, exc)
