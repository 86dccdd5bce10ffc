"""The serving order: which waiting call goes to which secretary (pure: no I/O, time as an argument).

Which call is served next is deterministic and documented (README, "Who gets which call"):

1. Calls are taken in one order across every queue and practice: the highest queue priority first
   (an urgent queue before a normal one), then the one waiting longest. A call that was offered and
   not taken keeps its place; a callback task keeps the place of the call it came from.
2. The first call in that order that some free secretary covers is offered, to the secretary (or,
   for `ring_all`, the secretaries) chosen by its queue's strategy:
   - `longest_idle` (default): the one idle the longest;
   - `fewest_calls`: the one who answered the fewest calls today, then the longest idle; "today"
     is the local day (midnight to midnight) of the practice whose call is offered, in its time
     zone, and counts every call she answered that day (also before a restart: the controller
     seeds the answers from the call records at start-up);
   - `skill`: the one with the highest skill level for the practice, then the longest idle;
   - `ring_all`: every free secretary covering it at once; the first to answer takes it.
   Ties end on the secretary's identifier, never on chance.

A queue may be shared by several practices (`shared: <line>` in each dialplan): their calls then
form one line (position, length and overflow are counted over the line) served by the secretaries
listed for `line:<name>`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

DEFAULT_LEVEL = 1
ANSWERS_KEPT = dt.timedelta(days=2)  # covers "today" in any practice's time zone
# A secretary's states as her console shows them (`Secretary.state`) and as events carry them.
SECRETARY_STATES = ("offline", "available", "ringing", "on_call", "wrap_up", "paused")


@dataclass(eq=False)
class Secretary:
    """A secretary's phone: a static SIP URI (a fixed phone, always logged in), or a user whose
    softphone registers at the edge (offered calls only while logged in and registered)."""

    uri: str
    username: str | None = None
    registered: bool = False
    logged_in: bool = True
    activity: str = "idle"  # idle | ringing | on_call | wrap_up
    idle_since: float = 0.0
    missed: int = 0  # offers not taken in a row
    paused: str | None = None  # why she is not offered calls (French: she reads it)
    auto_paused: bool = False  # paused by missed offers (re-registering her softphone resumes her)
    levels: dict[str, int] = field(default_factory=dict)  # practice -> skill level (higher first)
    answers: dict[str, dt.datetime] = field(default_factory=dict)  # call or task id -> when she answered it
    offer: dict | None = None  # the screen-pop of the call ringing her or that she is on

    @property
    def id(self) -> str:
        return self.username or self.uri

    @property
    def busy(self) -> bool:
        return self.activity != "idle"

    @property
    def reachable(self) -> bool:
        return self.logged_in and self.paused is None and (self.username is None or self.registered)

    @property
    def state(self) -> str:
        """offline | paused | available | ringing | on_call | wrap_up, as the console shows it."""
        if not self.logged_in or (self.username is not None and not self.registered):
            return "offline" if self.activity == "idle" else self.activity
        if self.paused is not None and self.activity == "idle":
            return "paused"
        return "available" if self.activity == "idle" else self.activity

    def level(self, practice: str) -> int:
        return self.levels.get(practice, self.levels.get("*", DEFAULT_LEVEL))

    def count_answer(self, key: str, at: dt.datetime) -> None:
        """She answered call (or callback task) `key` at `at`; answers older than two days go."""
        self.answers[key] = at
        for old in [k for k, when in self.answers.items() if at - when > ANSWERS_KEPT]:
            del self.answers[old]

    def calls_on(self, day: dt.date, zone: dt.tzinfo) -> int:
        """Calls she answered on local day `day` of time zone `zone`."""
        return sum(1 for when in self.answers.values() if when.astimezone(zone).date() == day)


@dataclass(eq=False)
class Waiting:
    session: Any  # what waits: the controller's call session, or a callback task
    practice: str
    queue: str
    priority: int
    enqueued_at: float
    seq: int
    line: str = ""  # the line it waits in: "practice/queue", or "line:<name>" for a shared queue
    strategy: str = "longest_idle"
    zone: dt.tzinfo = dt.timezone.utc  # the practice's time zone: its local day for `fewest_calls`

    def __post_init__(self) -> None:
        self.line = self.line or f"{self.practice}/{self.queue}"


def next_offer(waiting: Iterable[Waiting], covering: Callable[[Waiting], list[Secretary]],
               excluded: Mapping[Any, Iterable[str]] | None = None,
               now: dt.datetime | None = None) -> tuple[Waiting, list[Secretary]] | None:
    """The first call in serving order that a free, reachable secretary covering it (not among
    those already tried for it, `excluded[session]`) can take, and who to ring; None when none.
    `fewest_calls` counts the calls answered on the local day of `now` in the call's zone."""
    excluded = excluded or {}
    for w in sorted(waiting, key=order):
        tried = excluded.get(w.session, ())
        free = [a for a in covering(w) if not a.busy and a.reachable and a.uri not in tried]
        if free:
            return w, choose(w, free, now)
    return None


def choose(w: Waiting, free: list[Secretary], now: dt.datetime | None = None) -> list[Secretary]:
    """The secretaries to ring for `w` among the free ones covering it, by its queue's strategy."""
    idle = sorted(free, key=lambda a: (a.idle_since, a.uri))
    match w.strategy:
        case "ring_all":
            return idle
        case "fewest_calls":
            day = now.astimezone(w.zone).date() if now else None
            return [min(idle, key=lambda a: (a.calls_on(day, w.zone) if day else len(a.answers), a.idle_since, a.uri))]
        case "skill":
            return [min(idle, key=lambda a: (-a.level(w.practice), a.idle_since, a.uri))]
        case _:
            return idle[:1]


def order(w: Waiting) -> tuple:
    """The serving order's sort key: priority first, then the longest waiting, then arrival."""
    return (-w.priority, w.enqueued_at, w.seq)
