"""The forwarding watch's pure logic: when each watch call goes out, what an attempt came to, what a
run does next, and the numbers the watch calls present (docs/forwarding-watch.md). Time is always
an argument.

The schedule. A practice's windows are local wall times in its time zone. A window's ends are
turned into instants the way the calendar reads local times: an ambiguous time (clocks going back)
is its first occurrence; a time that does not exist (clocks going forward) is moved forward by the
jump, so a window inside the jump is empty and skipped, and no slot is ever doubled. In each
window a number is called once, at an offset taken from a hash of the practice, the number, the
day and the window: the same every time it is computed (every node, every restart), different
from one practice to the next. With `closed` or `no_answer` forwarding a call is kept only if the
practice is not open from the call to the end of its possible retry. A local day gets at most
`cap // 2` watches (each may need its retry: at most `cap` calls), picked evenly among the day's
candidates; and two watches of one number are always further apart than an attempt, its retry
and the retry's attempt, so one number is never called twice at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Iterable, Sequence

from callrouter.domain import calendar
from callrouter.domain.model import Dialplan
from callrouter.domain.phone import InvalidNumber, normalise
from callrouter.domain.watch_spec import ALWAYS, WatchedNumber, WatchSpec, WatchWindow

UTC = dt.timezone.utc
GUARD_S = 15.0  # after a call is decided, how long its leg may take to end
CHECK_EVERY = dt.timedelta(minutes=5)  # the calendar is read this often over a call's span

# What one watch call came to.
PASSED = "passed"            # the forwarded call came back: the forwarding works
BUSY = "busy"                # the line was busy (or declined the call)
UNANSWERED = "unanswered"    # it rang until the limit (or gave up ringing) and never came back
ANSWERED = "answered"        # someone (or a machine) answered the practice's line: not forwarded
NO_RETURN = "no_return"      # nothing came back within the limit, not even a ring
REFUSED = "refused"          # the network refused the call (number unknown, trunk error...)
NOT_PLACED = "not_placed"    # the call could not even be placed (no media worker had room)
OUTCOMES = (PASSED, BUSY, UNANSWERED, ANSWERED, NO_RETURN, REFUSED, NOT_PLACED)
FAILURES = tuple(o for o in OUTCOMES if o != PASSED)
OUTCOME_LABELS = {
    PASSED: "renvoi vérifié", BUSY: "ligne occupée", UNANSWERED: "sonne sans réponse, l'appel n'est pas revenu",
    ANSWERED: "décroché au cabinet : l'appel n'a pas été renvoyé", NO_RETURN: "l'appel n'est pas revenu",
    REFUSED: "appel refusé par le réseau", NOT_PLACED: "appel de test impossible à passer",
}
BUSY_CODES = frozenset({486, 600, 603})
NO_ANSWER_CODES = frozenset({408, 480, 487})

# What a run does once an attempt is over.
RETRY, FAIL = "retry", "failed"


# --- verdicts ------------------------------------------------------------------------------------

def attempt_outcome(*, returned: bool = False, answered: bool = False, rang: bool = False,
                    end_code: int | None = None, by: str | None = None) -> str:
    """What an attempt came to: the call came back; else the line answered; else how its leg ended
    (`end_code` and `by`, None when the time limit ended it first)."""
    if returned:
        return PASSED
    if answered:
        return ANSWERED
    if by == "worker":
        return NOT_PLACED
    if end_code is None:
        return UNANSWERED if rang else NO_RETURN
    if end_code in BUSY_CODES:
        return BUSY
    if end_code in NO_ANSWER_CODES:
        return UNANSWERED
    return REFUSED


def after_attempt(outcomes: Sequence[str], retry_possible: bool = True) -> str:
    """PASSED, RETRY (one retry, to ride out one lost call) or FAIL, from the outcomes so far."""
    if outcomes and outcomes[-1] == PASSED:
        return PASSED
    if len(outcomes) == 1 and retry_possible:
        return RETRY
    return FAIL


# --- the numbers the watch calls present -----------------------------------------------------------

def number_key(number: str) -> str:
    """A number as the watch compares it: E.164 when it is a French one (0142... and +33142... match)."""
    try:
        return normalise(number)
    except InvalidNumber:
        return number.strip()


def range_numbers(first: str, size: int) -> tuple[str, ...]:
    """The `size` consecutive numbers from `first` (E.164: +33180000100, +33180000101...)."""
    digits = first.lstrip("+")
    width = len(digits)
    return tuple("+" + str(int(digits) + i).zfill(width) for i in range(size))


def caller_for(sequence: int, numbers: Sequence[str], busy: Iterable[str] = ()) -> str | None:
    """The presented number of the `sequence`-th watch call: the range taken in turn, skipping
    the numbers of calls still under way; None when all of them are."""
    taken = set(busy)
    for i in range(len(numbers)):
        candidate = numbers[(sequence + i) % len(numbers)]
        if candidate not in taken:
            return candidate
    return None


# --- the schedule ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedWatch:
    """One watch: `number` is called at `at` (UTC), in its window [window_start, window_end)."""

    practice: str
    number: WatchedNumber
    at: dt.datetime
    window_start: dt.datetime
    window_end: dt.datetime

    @property
    def key(self) -> str:
        """The same for every node and restart computing it: the store claims each key once."""
        return f"{self.practice}|{self.number.call}|{self.window_start.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def span(spec: WatchSpec) -> dt.timedelta:
    """How long one watch may keep its number busy: an attempt, the wait, the retry."""
    return dt.timedelta(seconds=2 * (spec.timeout_s + GUARD_S) + spec.retry_after_s)


def instant(tz: str, local: dt.datetime) -> dt.datetime:
    """A local wall time as an instant: an ambiguous time is its first occurrence, a time inside a
    jump forward is moved forward by the jump."""
    return local.replace(tzinfo=calendar.zone(tz), fold=0).astimezone(UTC)


def window_instants(tz: str, day: dt.date, window: WatchWindow) -> tuple[dt.datetime, dt.datetime] | None:
    """The window's instants on a local day; None when it is empty (inside a jump forward)."""
    midnight = dt.datetime.combine(day, dt.time())
    start = instant(tz, midnight + dt.timedelta(minutes=window.start))
    end = instant(tz, midnight + dt.timedelta(minutes=window.end))
    return (start, end) if end > start else None


def allowed(spec: WatchSpec, cal: calendar.CalendarSpec, at: dt.datetime) -> bool:
    """May a watch call go out at `at`? Always with `always` forwarding; otherwise only if the
    calendar says not open from `at` to the end of the watch's span (its retry included), so
    that the practice's own phone never rings while someone there could answer it."""
    if spec.forwarding == ALWAYS:
        return True
    end = at + span(spec)
    t = at
    while t < end:
        if calendar.state_at(cal, t).status == calendar.OPEN:
            return False
        t += CHECK_EVERY
    return calendar.state_at(cal, end).status != calendar.OPEN


def _offset(practice: str, number: str, day: dt.date, window: WatchWindow, usable_s: float) -> dt.timedelta:
    digest = hashlib.sha256(f"{practice}|{number}|{day.isoformat()}|{window.start}".encode()).digest()
    return dt.timedelta(seconds=int.from_bytes(digest[:8], "big") % (int(usable_s) + 1))


def evenly(items: Sequence[PlannedWatch], k: int) -> list[PlannedWatch]:
    """`k` of `items` spread evenly over them (all of them when there are no more than `k`)."""
    n = len(items)
    if n <= k:
        return list(items)
    return [items[(i * n) // k] for i in range(k)]


def day_plan(dialplan: Dialplan, spec: WatchSpec, day: dt.date, cap: int) -> list[PlannedWatch]:
    """The watches of one local day of the practice, in time order, before the per-number spacing."""
    tz = dialplan.calendar.timezone
    candidates: list[PlannedWatch] = []
    for window in spec.windows:
        if day.weekday() not in window.days:
            continue
        bounds = window_instants(tz, day, window)
        if bounds is None:
            continue
        start, end = bounds
        usable = max(0.0, (end - start).total_seconds() - spec.timeout_s - GUARD_S)
        for number in spec.numbers:
            at = start + _offset(dialplan.practice, number.call, day, window, usable)
            if allowed(spec, dialplan.calendar_for(number.site), at):
                candidates.append(PlannedWatch(dialplan.practice, number, at, start, end))
    candidates.sort(key=lambda w: (w.at, w.number.call))
    return evenly(candidates, max(0, cap) // 2)


def spaced(watches: Iterable[PlannedWatch], spec: WatchSpec) -> list[PlannedWatch]:
    """Drops a watch of a number that would start within `span` of the previous one kept."""
    last: dict[str, dt.datetime] = {}
    out = []
    gap = span(spec)
    for w in sorted(watches, key=lambda w: (w.at, w.number.call)):
        previous = last.get(w.number.call)
        if previous is not None and w.at - previous < gap:
            continue
        last[w.number.call] = w.at
        out.append(w)
    return out


def plan(dialplan: Dialplan, start: dt.datetime, end: dt.datetime, cap: int) -> list[PlannedWatch]:
    """Every watch of the practice placed in [start, end) (aware instants), in time order. `cap`:
    the most calls a local day, retries included (the dialplan's, within the settings' ceiling).
    Whole local days are always planned (the day before included, for the spacing), so a watch is
    the same whatever range asked for it."""
    spec = dialplan.watch
    if spec is None or start >= end:
        return []
    tz = dialplan.calendar.timezone
    first = calendar.local_time(tz, start).date() - dt.timedelta(days=1)
    last = calendar.local_time(tz, end).date()
    watches: list[PlannedWatch] = []
    day = first
    while day <= last:
        watches += day_plan(dialplan, spec, day, cap)
        day += dt.timedelta(days=1)
    return [w for w in spaced(watches, spec) if start <= w.at < end]


def next_watches(dialplan: Dialplan, now: dt.datetime, cap: int, count: int = 3,
                 horizon: dt.timedelta = dt.timedelta(days=8)) -> list[PlannedWatch]:
    """The next `count` watches from `now` within `horizon`."""
    return plan(dialplan, now, now + horizon, cap)[:count]


def local_day_bounds(tz: str, at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The instants of the local day holding `at` (23 or 25 hours on a change of time)."""
    day = calendar.local_time(tz, at).date()
    start = instant(tz, dt.datetime.combine(day, dt.time()))
    end = instant(tz, dt.datetime.combine(day + dt.timedelta(days=1), dt.time()))
    return start, end


def may_start(runs_today: int, cap: int) -> bool:
    """A new run reserves two calls (its attempt and its possible retry) in the day's budget."""
    return 2 * (runs_today + 1) <= cap
