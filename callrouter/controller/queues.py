"""Waiting calls and the secretaries who cover them: the ACD's book (in memory, no I/O).

Who covers which queue comes from the settings (`controller.secretaries`); the order in which
waiting calls are served, and to whom, is `callrouter.domain.serving`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any, Iterable, Mapping

from callrouter.domain import serving
from callrouter.domain.serving import Secretary, Waiting


class QueueBook:
    def __init__(self, secretaries: Mapping[str, Iterable[str]], secretary_domain: str | None = None,
                 levels: Mapping[str, Mapping[str, int]] | None = None, login_required: bool = False):
        """`secretaries`: key -> SIP URIs or usernames. Keys: "practice/queue", "practice/*",
        "line:<name>" (a shared queue) or "*". A username means the softphone that user registers
        at the edge, reached as sip:<username>@<secretary_domain>. `levels`: secretary (username or
        URI) -> practice (or "*") -> skill level. With `login_required`, a secretary with a username
        is offered calls only after logging in (fixed phones are always logged in)."""
        self._secretaries: dict[str, Secretary] = {}
        self._by_key: dict[str, list[Secretary]] = {}
        self.login_required = login_required
        for key, entries in secretaries.items():
            self._by_key[key] = [self._secretary(e, secretary_domain) for e in entries]
        for who, by_practice in (levels or {}).items():
            secretary = self.find(who)
            if secretary is None:
                raise ValueError(f"skill levels given for {who!r}, who is in no queue")
            secretary.levels.update(by_practice)
        self._waiting: list[Waiting] = []
        self._seq = itertools.count()

    def _secretary(self, entry: str, domain: str | None) -> Secretary:
        if entry.startswith(("sip:", "sips:")):
            return self._secretaries.setdefault(entry, Secretary(entry))
        if not domain:
            raise ValueError(f"secretary {entry!r} is a username but no SIP edge is configured; give a sip: URI")
        uri = f"sip:{entry}@{domain}"
        return self._secretaries.setdefault(uri, Secretary(uri, username=entry, logged_in=not self.login_required))

    def find(self, who: str) -> Secretary | None:
        """A secretary by username or phone URI."""
        for secretary in self._secretaries.values():
            if who in (secretary.username, secretary.uri):
                return secretary
        return None

    def set_registered(self, usernames: frozenset[str]) -> list[Secretary]:
        """Who is registered now; returns the secretaries that just became registered."""
        came = []
        for secretary in self._secretaries.values():
            if secretary.username is not None:
                now = secretary.username in usernames
                if now and not secretary.registered:
                    came.append(secretary)
                secretary.registered = now
        return came

    def secretaries(self) -> list[Secretary]:
        return list(self._secretaries.values())

    def covering(self, practice: str, queue: str, line: str | None = None) -> list[Secretary]:
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
        same = sorted((w for w in self._waiting if w.line == mine.line), key=serving.order)
        return same.index(mine) + 1

    def next_offer(self, excluded: Mapping[Any, set[str]] | None = None,
                   now: dt.datetime | None = None) -> tuple[Waiting, list[Secretary]] | None:
        """The next call to offer and the secretaries to ring for it, or None. `fewest_calls`
        counts the calls answered on the local day of `now` in the call's practice's zone."""
        return serving.next_offer(self._waiting, lambda w: self.covering(w.practice, w.queue, w.line), excluded, now)

    def waiting(self) -> list[Waiting]:
        return sorted(self._waiting, key=serving.order)


