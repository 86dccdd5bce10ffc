"""Waiting calls and the secretaries who can take them (the ACD's bookkeeping, no I/O).

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
import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

DEFAULT_LEVEL = 1
ANSWERS_KEPT = dt.timedelta(days=2)  # covers "today" in any practice's time zone


@dataclass(eq=False)
class Agent:
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
    session: Any  # the controller's CallSession (or a callback task's session)
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


class QueueBook:
    def __init__(self, agents: Mapping[str, Iterable[str]], secretary_domain: str | None = None,
                 levels: Mapping[str, Mapping[str, int]] | None = None, login_required: bool = False):
        """`agents`: key -> SIP URIs or usernames. Keys: "practice/queue", "practice/*",
        "line:<name>" (a shared queue) or "*". A username means the softphone that user registers
        at the edge, reached as sip:<username>@<secretary_domain>. `levels`: secretary (username or
        URI) -> practice (or "*") -> skill level. With `login_required`, a secretary with a username
        is offered calls only after logging in (fixed phones are always logged in)."""
        self._agents: dict[str, Agent] = {}
        self._by_key: dict[str, list[Agent]] = {}
        self.login_required = login_required
        for key, entries in agents.items():
            self._by_key[key] = [self._agent(e, secretary_domain) for e in entries]
        for who, by_practice in (levels or {}).items():
            agent = self.find(who)
            if agent is None:
                raise ValueError(f"skill levels given for {who!r}, who is in no queue")
            agent.levels.update(by_practice)
        self._waiting: list[Waiting] = []
        self._seq = itertools.count()

    def _agent(self, entry: str, domain: str | None) -> Agent:
        if entry.startswith(("sip:", "sips:")):
            return self._agents.setdefault(entry, Agent(entry))
        if not domain:
            raise ValueError(f"secretary {entry!r} is a username but no SIP edge is configured; give a sip: URI")
        uri = f"sip:{entry}@{domain}"
        return self._agents.setdefault(uri, Agent(uri, username=entry, logged_in=not self.login_required))

    def find(self, who: str) -> Agent | None:
        """A secretary by username or phone URI."""
        for agent in self._agents.values():
            if who in (agent.username, agent.uri):
                return agent
        return None

    def set_registered(self, usernames: frozenset[str]) -> list[Agent]:
        """Who is registered now; returns the agents that just became registered."""
        came = []
        for agent in self._agents.values():
            if agent.username is not None:
                now = agent.username in usernames
                if now and not agent.registered:
                    came.append(agent)
                agent.registered = now
        return came

    def agents(self) -> list[Agent]:
        return list(self._agents.values())

    def agents_for(self, practice: str, queue: str, line: str | None = None) -> list[Agent]:
        keys = ([line] if line and line.startswith("line:") else []) + [f"{practice}/{queue}", f"{practice}/*", "*"]
        for key in keys:
            if key in self._by_key:
                return self._by_key[key]
        return []

    def enqueue(self, session: Any, practice: str, queue: str, priority: int, now: float,
                line: str | None = None, strategy: str = "longest_idle",
                zone: dt.tzinfo = dt.timezone.utc) -> Waiting:
        w = Waiting(session, practice, queue, priority, now, next(self._seq), line or "", strategy, zone)
        self._waiting.append(w)
        return w

    def requeue(self, w: Waiting) -> None:
        """Put back a call whose offer failed, at its original place."""
        if w not in self._waiting:
            self._waiting.append(w)

    def remove(self, session: Any) -> Waiting | None:
        for w in self._waiting:
            if w.session is session:
                self._waiting.remove(w)
                return w
        return None

    def length(self, line: str) -> int:
        return sum(1 for w in self._waiting if w.line == line)

    def position(self, session: Any) -> int:
        """1-based place in its line, in serving order."""
        mine = next((w for w in self._waiting if w.session is session), None)
        if mine is None:
            return 0
        same = sorted((w for w in self._waiting if w.line == mine.line), key=_order)
        return same.index(mine) + 1

    def next_offer(self, excluded: Mapping[Any, set[str]] | None = None,
                   now: dt.datetime | None = None) -> tuple[Waiting, list[Agent]] | None:
        """The next call to offer and the secretaries to ring for it, or None. `fewest_calls`
        counts the calls answered on the local day of `now` in the call's practice's zone."""
        excluded = excluded or {}
        for w in sorted(self._waiting, key=_order):
            tried = excluded.get(w.session, ())
            free = [a for a in self.agents_for(w.practice, w.queue, w.line)
                    if not a.busy and a.reachable and a.uri not in tried]
            if free:
                return w, choose(w, free, now)
        return None

    def waiting(self) -> list[Waiting]:
        return sorted(self._waiting, key=_order)


def choose(w: Waiting, free: list[Agent], now: dt.datetime | None = None) -> list[Agent]:
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


def _order(w: Waiting) -> tuple:
    return (-w.priority, w.enqueued_at, w.seq)
