"""What call recording needs of the store (callrouter.store.recordings and .voicemails implement
it), and the on-demand requests as the call side reads them: a copy kept on the reactor, refreshed
from the store off it."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable, Protocol, Sequence

from callrouter.domain.recording import Demand
from callrouter.ports import Actor, utc_from_clock

logger = logging.getLogger(__name__)


class RecordingStore(Protocol):
    def set_status(self, call_id: str, status: str, reason: str | None, now: dt.datetime) -> None: ...
    def add(self, call_id: str, practice: str, secretary: str | None, file: str, key_id: str, sha256: str,
            size_bytes: int, channels: int, duration_seconds: float, started_at: dt.datetime, now: dt.datetime,
            reason: str | None = None) -> int | None: ...
    def refuse(self, call_id: str, by: Actor, now: dt.datetime, reason: str) -> str | None: ...
    def active_demands(self, now: dt.datetime) -> list[Demand]: ...
    def files(self) -> set[str]: ...


class MessageStore(Protocol):
    def add(self, call_id: str, practice: str, task_id: str | None, file: str, key_id: str, sha256: str,
            size_bytes: int, duration_seconds: float, truncated: bool, started_at: dt.datetime, now: dt.datetime,
            notify: bool) -> int: ...
    def legacy(self) -> list[tuple[int, str, str]]: ...
    def sealed(self, message_id: int, file: str | None, key_id: str | None, sha256: str | None,
               size_bytes: int | None, actor: Actor, now: dt.datetime) -> None: ...
    def claim_notifications(self, limit: int = 20) -> list[Any]: ...
    def notified(self, message_id: int, sent: bool, now: dt.datetime) -> None: ...
    def release_sending(self) -> int: ...
    def files(self) -> set[str]: ...
    def count(self) -> int: ...


class DemandBook:
    """The on-demand requests not over yet, read on the reactor by the call side; `refresh()` reads
    them again off the reactor (at start, after a change through the API, and every minute: a
    request made on another node)."""

    def __init__(self, read: Callable[[dt.datetime], Sequence[Demand]], run_blocking: Callable[..., Any],
                 clock: Any) -> None:
        self._read, self._run, self._clock = read, run_blocking, clock
        self._current: tuple[Demand, ...] = ()

    def current(self) -> tuple[Demand, ...]:
        return self._current

    def refresh(self) -> Any:
        d = self._run(self._read, utc_from_clock(self._clock))
        d.addCallback(self._set)
        d.addErrback(lambda f: logger.warning("on-demand recording requests not re-read: %s", f.getErrorMessage()))
        return d

    def _set(self, demands: Sequence[Demand]) -> None:
        self._current = tuple(demands)
