"""Waiting calls and the secretaries who can take them.

Order is deterministic and documented: among the calls a free secretary can take, the one with
the highest queue priority first, then the one waiting longest (a call that was offered and not
taken keeps its place). Among free secretaries, the one idle the longest gets the next call.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterable, Mapping


@dataclass(eq=False)
class Agent:
    """A secretary's phone: a static SIP URI, or a user whose softphone registers at the edge (then
    offered calls only while registered)."""

    uri: str
    username: str | None = None
    registered: bool = False
    busy: bool = False
    idle_since: float = 0.0
    missed: int = 0  # offers not taken in a row
    paused: str | None = None  # why she is not offered calls (French: she reads it)

    @property
    def reachable(self) -> bool:
        return self.paused is None and (self.username is None or self.registered)


@dataclass(eq=False)
class Waiting:
    session: Any  # the controller's CallSession
    practice: str
    queue: str
    priority: int
    enqueued_at: float
    seq: int

    @property
    def key(self) -> str:
        return f"{self.practice}/{self.queue}"


class QueueBook:
    def __init__(self, agents: Mapping[str, Iterable[str]], secretary_domain: str | None = None):
        """`agents`: queue key -> SIP URIs or usernames; a username means the softphone that user
        registers at the edge, reached as sip:<username>@<secretary_domain>."""
        self._agents: dict[str, Agent] = {}
        self._by_key: dict[str, list[Agent]] = {}
        for key, entries in agents.items():
            self._by_key[key] = [self._agent(e, secretary_domain) for e in entries]
        self._waiting: list[Waiting] = []
        self._seq = itertools.count()

    def _agent(self, entry: str, domain: str | None) -> Agent:
        if entry.startswith(("sip:", "sips:")):
            return self._agents.setdefault(entry, Agent(entry))
        if not domain:
            raise ValueError(f"secretary {entry!r} is a username but no SIP edge is configured; give a sip: URI")
        uri = f"sip:{entry}@{domain}"
        return self._agents.setdefault(uri, Agent(uri, username=entry))

    def set_registered(self, usernames: frozenset[str]) -> list[Agent]:
        """Who is registered now; returns the agents that just became reachable."""
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

    def agents_for(self, practice: str, queue: str) -> list[Agent]:
        for key in (f"{practice}/{queue}", f"{practice}/*", "*"):
            if key in self._by_key:
                return self._by_key[key]
        return []

    def enqueue(self, session: Any, practice: str, queue: str, priority: int, now: float) -> Waiting:
        w = Waiting(session, practice, queue, priority, now, next(self._seq))
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

    def length(self, practice: str, queue: str) -> int:
        return sum(1 for w in self._waiting if w.practice == practice and w.queue == queue)

    def position(self, session: Any) -> int:
        """1-based place among the calls of the same queue, in serving order."""
        mine = next((w for w in self._waiting if w.session is session), None)
        if mine is None:
            return 0
        same = sorted((w for w in self._waiting if w.key == mine.key), key=_order)
        return same.index(mine) + 1

    def next_offer(self, excluded: Mapping[Any, set[str]] | None = None) -> tuple[Waiting, Agent] | None:
        """The next (call, secretary) pair to ring, or None."""
        excluded = excluded or {}
        free = sorted((a for a in self._agents.values() if not a.busy and a.reachable),
                      key=lambda a: (a.idle_since, a.uri))
        for agent in free:
            candidates = [w for w in self._waiting
                          if agent in self.agents_for(w.practice, w.queue)
                          and agent.uri not in excluded.get(w.session, ())]
            if candidates:
                return min(candidates, key=_order), agent
        return None

    def waiting(self) -> list[Waiting]:
        return sorted(self._waiting, key=_order)


def _order(w: Waiting) -> tuple:
    return (-w.priority, w.enqueued_at, w.seq)
