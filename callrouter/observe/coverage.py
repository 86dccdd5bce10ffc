"""Two questions the samplers ask of a practice's dialplan at an instant, answered without I/O (time
is an argument):

- `staffing`: is the practice open, and if so is anybody there to answer? Open is its calendar's
  main state (hours, holidays, closures, one-off openings); an open practice needs a secretary
  only when its open route can lead a caller to a queue (through its menus); `staffed(practice,
  queue, line)` says whether a secretary covering that queue is logged in.
- `rota_end`: the last instant someone is on call, read over `horizon` from now: a rota covered to
  the end of the horizon reports its end (now + horizon); a rota that ends (its `until`, the last
  shift of its feed) reports where cover stops; a rota with nobody on call at all reports now.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable

from callrouter.domain import calendar, oncall
from callrouter.domain.model import Dialplan
from callrouter.domain.routing import route_for
from callrouter.domain.timeline import reach
from callrouter.domain.times import Period

ROTA_HORIZON = dt.timedelta(days=60)


def staffing(dialplan: Dialplan, now: dt.datetime, staffed: Callable[[str, str, str], bool]) -> tuple[bool, bool]:
    """(open, open and nobody logged in to answer its queues)."""
    state = calendar.state_at(dialplan.calendar, now)
    if state.status != calendar.OPEN:
        return False, False
    _, action = route_for(dialplan, state)
    queues = [q for q in sorted(reach(dialplan, action).queues) if q in dialplan.queues]
    if not queues:
        return True, False
    practice = dialplan.practice
    return True, not any(staffed(practice, q, dialplan.queues[q].line or f"{practice}/{q}") for q in queues)


def rota_end(dialplan: Dialplan, now: dt.datetime, horizon: dt.timedelta = ROTA_HORIZON) -> dt.datetime | None:
    """The last covered instant (aware, UTC) within `horizon` of `now`; None without a rota."""
    rota = dialplan.on_call
    if rota is None:
        return None
    tz = dialplan.calendar.timezone
    start = calendar.local_time(tz, now)
    covered = [seg for seg in oncall.who_when(rota, Period(start, start + horizon)) if seg.who is not None]
    if not covered:
        return now
    end = covered[-1].period.end.replace(tzinfo=calendar.zone(tz)).astimezone(dt.timezone.utc)
    return max(end, now)
