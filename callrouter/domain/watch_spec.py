"""A practice's forwarding watch as the dialplan states it (docs/forwarding-watch.md): which numbers
are called, how the practice forwards its line, the daily windows the calls go out in, and whom a
failure alerts. Frozen values only; the schedule and the verdicts are callrouter.domain.watch.
"""

from __future__ import annotations

from dataclasses import dataclass

# How the practice's line reaches the secretariat, as set at its operator:
# - always: every call is forwarded, so a watch call may go out at any time;
# - closed: forwarded only outside opening hours (an automatic forwarding, or set when leaving):
#   watch calls go out only while the practice's calendar says it is not open;
# - no_answer: forwarded when nobody picks up, so the practice's own phone rings first: only
#   while the practice is not open either, and with a longer time limit.
ALWAYS, CLOSED, NO_ANSWER = "always", "closed", "no_answer"
FORWARDING_MODES = (ALWAYS, CLOSED, NO_ANSWER)
DEFAULT_TIMEOUT_S = {ALWAYS: 30.0, CLOSED: 30.0, NO_ANSWER: 60.0}
DEFAULT_SPREAD_MIN = 15  # a window given as one time of day ("03:10") lasts this long


@dataclass(frozen=True)
class WatchedNumber:
    """`call` is dialled (the practice's public number, as a patient dials it); the forwarded call
    comes back on `returns_on` (one of the dialplan's numbers; the same number unless the line is
    forwarded to another of the secretariat's numbers); `site` names the calendar that says when
    the practice is open (None: the practice's main calendar)."""

    call: str
    returns_on: str
    site: str | None = None


@dataclass(frozen=True)
class WatchWindow:
    """A daily window [start, end) in minutes since local midnight (end at most 1440: a window
    never crosses midnight), on `days` (0 = Monday). A watch call goes out once in it, at an
    offset of its own, so that many practices with the same window do not all call at once."""

    start: int
    end: int
    days: tuple[int, ...] = tuple(range(7))


@dataclass(frozen=True)
class WatchSpec:
    forwarding: str                       # ALWAYS | CLOSED | NO_ANSWER
    numbers: tuple[WatchedNumber, ...]
    windows: tuple[WatchWindow, ...]
    timeout_s: float                      # how long the call back is waited for
    retry_after_s: float = 300.0          # a failed call is tried once more this much later
    max_calls_per_day: int = 4            # watch calls a local day for the practice, retries included
    emails: tuple[str, ...] = ()          # the practice's contacts told of a failure
    sms: tuple[str, ...] = ()
