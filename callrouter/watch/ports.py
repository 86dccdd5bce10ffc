"""What the forwarding watch needs from the rest: the store (callrouter.store.watch.WatchRepository
implements `WatchStore`), the events (callrouter.events.notifier.EventNotifier) and the message
channels (the escalation's SMS and e-mail senders, callrouter.escalation.channels). Blocking store
calls go through `RunBlocking` (callrouter.ports)."""

from __future__ import annotations

import datetime as dt
from typing import Iterable, Protocol

from callrouter.domain.watch_views import AlertView, RunView
from callrouter.ports import Actor


class WatchStore(Protocol):
    def start_run(self, slot_key: str, practice: str, number: str, returns_on: str, caller: str, token: str,
                  trigger: str, planned_at: dt.datetime, now: dt.datetime, day: tuple[dt.datetime, dt.datetime],
                  cap: int) -> RunView | None: ...

    def add_attempt(self, run_id: int, n: int, now: dt.datetime) -> None: ...

    def end_attempt(self, run_id: int, n: int, outcome: str, now: dt.datetime, sip_code: int | None = None,
                    rang: bool = False, rtt_ms: int | None = None, name_kept: bool | None = None) -> None: ...

    def finish(self, run_id: int, state: str, outcome: str, now: dt.datetime, rtt_ms: int | None = None,
               alerts: Iterable[tuple[str, str]] = ()) -> RunView: ...

    def acknowledge(self, actor: Actor, run_id: int, now: dt.datetime) -> RunView: ...

    def interrupted(self, now: dt.datetime) -> tuple[int, int]: ...

    def pending_alerts(self) -> list[tuple[AlertView, RunView]]: ...

    def claim_alert(self, alert_id: int, now: dt.datetime) -> bool: ...

    def alert_sent(self, alert_id: int, provider_id: str | None, now: dt.datetime) -> None: ...

    def alert_failed(self, alert_id: int, error: str) -> None: ...

    def get(self, run_id: int) -> RunView: ...

    def runs(self, practices: Iterable[str] | None = None, limit: int = 50,
             since: dt.datetime | None = None) -> list[RunView]: ...

    def latest(self, practices: Iterable[str] | None = None) -> list[RunView]: ...

    def alarms(self, practices: Iterable[str] | None = None) -> list[RunView]: ...
