""""Calls today": how many times a caller called a practice (on her screen-pop), on the practice's
local day, in its time zone; and seeding the secretaries' answered calls (for `fewest_calls`).

The counts are kept in memory and seeded from the call records at start-up (`restore`, fed by
`callrouter.store.calls.arrivals_since` on a thread), rather than read from the store for each
call: an offer is built on the reactor thread and must not wait for the database (nor fail when it
is briefly down: the recorder holds the writes then, and a store read would see none of them), and
each call is counted once by its id, so a call that arrives while the seed is being read is not
counted twice. Counts older than two days are dropped as calls come.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo

from callrouter.controller.context import LOCAL_DAY_ZONE
from callrouter.domain.routing import Router
from callrouter.ports import Clock, SecretaryDesk, utc_from_clock

logger = logging.getLogger(__name__)

COUNTS_KEPT = dt.timedelta(days=2)  # "today" in any practice's time zone falls within it


class CallCounts:
    def __init__(self, clock: Clock, router: Callable[[], Router], desk: SecretaryDesk) -> None:
        self._clock, self._router, self._desk = clock, router, desk
        self._calls: dict[tuple[str, str], dict[str, dt.datetime]] = {}  # (practice, caller) -> call id -> arrival

    def since(self) -> dt.datetime:
        """From when the call records are needed to seed the counts of every practice's today."""
        return utc_from_clock(self._clock) - COUNTS_KEPT

    def restore(self, arrivals: Iterable[Any]) -> None:
        """Seed from the call records (`Arrival`s); a call already counted is not counted again."""
        n = 0
        for a in arrivals:
            if a.practice and a.caller:
                self.count(a.call_id, a.practice, a.caller, aware(a.arrived_at))
            if a.secretary and a.answered_at:
                self._desk.seed_answer(a.secretary, a.call_id, aware(a.answered_at))
            n += 1
        logger.info("calls today seeded from %d call record(s)", n)

    def count(self, call_id: str, practice: str, caller: str, arrived: dt.datetime) -> None:
        calls = self._calls.setdefault((practice, caller), {})
        calls[call_id] = arrived
        if len(self._calls) % 256 == 0:  # now and then: forget the callers of past days
            horizon = self.since()
            for key in [k for k, v in self._calls.items() if max(v.values()) < horizon]:
                del self._calls[key]

    def calls_today(self, practice: str, caller: str | None) -> int:
        """Calls from `caller` to `practice` on the practice's local day (this one included)."""
        if not caller:
            return 0
        zone = self.zone(practice)
        today = utc_from_clock(self._clock).astimezone(zone).date()
        return sum(1 for at in self._calls.get((practice, caller), {}).values()
                   if at.astimezone(zone).date() == today)

    def zone(self, practice: str) -> ZoneInfo:
        """The practice's time zone (its dialplan's), for its local day."""
        dialplan = self._router().dialplans.get(practice)
        return ZoneInfo(dialplan.calendar.timezone) if dialplan is not None else LOCAL_DAY_ZONE


def aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
