"""Waiting calls and the secretaries who cover them: the ACD's book (in memory, no I/O).

Who covers which queue is the team (callrouter.domain.team: kept in the database, seeded once from
the settings' `controller.secretaries`), given when the book is built and swapped live by
`reconfigure`; the order in which waiting calls are served, and to whom, is
`callrouter.domain.serving`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any, Callable, Iterable, Mapping

from callrouter.domain import serving
from callrouter.domain.serving import Secretary, Waiting
from callrouter.domain.team import phone_uri


class QueueBook:
    def __init__(self, secretaries: Mapping[str, Iterable[str]], secretary_domain: str | None = None,
                 levels: Mapping[str, Mapping[str, int]] | None = None, login_required: bool = False):
        """`secretaries`: key -> SIP URIs or usernames. Keys: "practice/queue", "practice/*",
        "line:<name>" (a shared queue) or "*"; the most precise key matching a call wins. A
        username means the softphone that user registers at the edge, reached as
        sip:<username>@<secretary_domain>. `levels`: secretary (username or URI) -> practice (or
        "*") -> skill level. With `login_required`, a secretary with a username is offered calls
        only after logging in (fixed phones are always logged in)."""
        self._secretaries: dict[str, Secretary] = {}
        self._former: dict[str, Secretary] = {}  # removed from the team, found again if she comes back
        self._by_key: dict[str, list[Secretary]] = {}
        self._domain = secretary_domain
        self.login_required = login_required
        self.reconfigure(secretaries, levels or {})
        self._waiting: list[Waiting] = []
        self._seq = itertools.count()
        # Several nodes (callrouter.controller.shared_desk): the other nodes' waiting calls, counted
        # in lengths and places but never offered here; `on_change` hears this node's line change.
        self.elsewhere: list[Waiting] = []
        self.on_change: Callable[[], None] | None = None

    def reconfigure(self, coverage: Mapping[str, Iterable[str]], levels: Mapping[str, Mapping[str, int]],
                    members: Iterable[str] = ()) -> tuple[list[Secretary], list[Secretary]]:
        """Who covers which key from now on (`members`: also those covering nothing yet); returns
        the secretaries (added, removed). Every Secretary staying is kept as she is (login, pause,
        registration, ringing or on a call, answers of the day), only her levels replaced; one
        removed while ringing or on a call keeps that call (the call side holds her) and comes back
        as she was if she is added again. A bad entry (a username with no SIP edge, levels for
        someone in no queue) raises ValueError before anything changes."""
        wanted: dict[str, Secretary] = {}

        def member(entry: str) -> Secretary:
            uri = phone_uri(entry, self._domain)
            if uri is None:
                raise ValueError(f"secretary {entry!r} is a username but no SIP edge is configured; give a sip: URI")
            if uri not in wanted:
                wanted[uri] = (self._secretaries.get(uri) or self._former.get(uri)
                               or Secretary(uri, username=None if uri == entry else entry,
                                            logged_in=uri == entry or not self.login_required))
            return wanted[uri]

        by_key = {key: list(dict.fromkeys(member(e) for e in entries)) for key, entries in coverage.items()}
        for entry in members:
            member(entry)
        new_levels: dict[str, dict[str, int]] = {}
        for who, by_practice in levels.items():
            found = next((a for a in wanted.values() if who in (a.username, a.uri)), None)
            if found is None:
                raise ValueError(f"skill levels given for {who!r}, who is in no queue")
            new_levels.setdefault(found.uri, {}).update(by_practice)
        added = [a for uri, a in wanted.items() if uri not in self._secretaries]
        removed = [a for uri, a in self._secretaries.items() if uri not in wanted]
        for secretary in wanted.values():
            secretary.levels.clear()
            secretary.levels.update(new_levels.get(secretary.uri, {}))
            self._former.pop(secretary.uri, None)
        self._former.update((a.uri, a) for a in removed)
        self._secretaries, self._by_key = wanted, by_key
        return added, removed

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
        self._changed()
        return w

    def requeue(self, w: Waiting) -> None:
        """Put back a call whose offer failed, at its original place."""
        if w not in self._waiting:
            self._waiting.append(w)
            self._changed()

    def remove(self, session: Any) -> Waiting | None:
        for w in self._waiting:
            if w.session is session:
                self._waiting.remove(w)
                self._changed()
                return w
        return None

    def length(self, line: str) -> int:
        """Calls waiting in `line`, on every node."""
        return sum(1 for w in self._waiting + self.elsewhere if w.line == line)

    def position(self, session: Any) -> int:
        """1-based place in its line, in serving order (the other nodes' calls counted too)."""
        mine = next((w for w in self._waiting if w.session is session), None)
        if mine is None:
            return 0
        same = sorted((w for w in self._waiting + self.elsewhere if w.line == mine.line), key=serving.order)
        return same.index(mine) + 1

    def next_offer(self, excluded: Mapping[Any, set[str]] | None = None,
                   now: dt.datetime | None = None) -> tuple[Waiting, list[Secretary]] | None:
        """The next call to offer and the secretaries to ring for it, or None. `fewest_calls`
        counts the calls answered on the local day of `now` in the call's practice's zone."""
        return serving.next_offer(self._waiting, lambda w: self.covering(w.practice, w.queue, w.line), excluded, now)

    def waiting(self) -> list[Waiting]:
        return sorted(self._waiting, key=serving.order)

    def coverage(self) -> dict[str, list[str]]:
        """Key -> phone URIs, a copy (read by the shared desk's claims on a store thread)."""
        return {key: [a.uri for a in secretaries] for key, secretaries in self._by_key.items()}

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


