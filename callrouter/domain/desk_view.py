"""The shared desk as every node reads it, and the one serving order over it (pure: no I/O, time as
an argument).

With several nodes on one PostgreSQL (docs/operations.md, "Several nodes"), each node reads the
same view from the database: every node's waiting calls, the active offers (a secretary with one is
busy, whichever node rang her), the secretaries' logins and pauses, when each became free, and her
answers of the last two days. `plan` applies callrouter.domain.serving to that view exactly as one
node applies it to its own line: the first call in serving order that a free secretary covers gets
the secretaries its strategy chooses, who are then taken, and so on until no call can be served.
Each node then rings only its own calls' part of the plan: a call of another node reserves its
secretaries (this node gives them no later call), and only its own node claims and rings them.

The same calls and secretaries split over any number of nodes thus give the same assignment as one
node holding them all (tests/store/test_desk_order.py checks it on the real PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Mapping

from callrouter.domain import serving
from callrouter.domain.serving import Secretary, Waiting


@dataclass(frozen=True)
class WaitingRow:
    """A call (or callback task) waiting in some node's line."""

    call_id: str
    node_id: str
    practice: str
    queue: str
    line: str
    priority: int
    enqueued_at: float      # seconds since the epoch
    seq: int
    strategy: str = "longest_idle"
    zone: str = "UTC"
    tried: frozenset[str] = frozenset()   # phone URIs already rung for it in this round
    offered: bool = False                 # its phones ring now: not served again meanwhile


@dataclass(frozen=True)
class OfferRow:
    """An active offer: `secretary` (her id) rings, is on the call, or in wrap-up for `call_id`."""

    call_id: str
    secretary: str
    node_id: str
    answered: bool = False


@dataclass(frozen=True)
class SecretaryRow:
    """Her login and pause as every node sees them."""

    secretary: str
    logged_in: bool
    paused: str | None = None
    auto_paused: bool = False
    missed: int = 0


@dataclass(frozen=True)
class DeskView:
    waiting: tuple[WaitingRow, ...] = ()
    offers: tuple[OfferRow, ...] = ()
    states: Mapping[str, SecretaryRow] = field(default_factory=dict)
    idle_since: Mapping[str, float] = field(default_factory=dict)   # id -> when her last offer ended
    answers: tuple[tuple[str, str, dt.datetime], ...] = ()           # (id, call id, answered at)

    def busy(self) -> frozenset[str]:
        """The secretaries (ids) with an active offer, whichever node made it."""
        return frozenset(o.secretary for o in self.offers)


Covering = Callable[[str, str, str], Iterable[str]]   # (practice, queue, line) -> phone URIs, in order


def secretaries_in(view: DeskView, members: Iterable[Secretary]) -> list[Secretary]:
    """Copies of this node's team (`members`: phone, username, registration, levels) with the
    shared states of `view`: her login and pause, busy when she has an active offer anywhere,
    idle since her last offer ended (or as this node last knew), her answers."""
    busy = view.busy()
    out = []
    for a in members:
        state = view.states.get(a.id)
        copy = replace(a, levels=dict(a.levels), answers={}, offer=None,
                       activity="ringing" if a.id in busy else "idle",
                       idle_since=view.idle_since.get(a.id, a.idle_since))
        if state is not None:
            copy.logged_in = state.logged_in if a.username is not None else True
            copy.paused, copy.auto_paused, copy.missed = state.paused, state.auto_paused, state.missed
        out.append(copy)
    by_id = {a.id: a for a in out}
    for who, call_id, at in view.answers:
        if who in by_id:
            by_id[who].answers[call_id] = at
    return out


def plan(view: DeskView, members: Iterable[Secretary], covering: Covering,
         now: dt.datetime | None = None) -> list[tuple[WaitingRow, list[str]]]:
    """Every call of the view that can be served now, in serving order, with the ids of the
    secretaries to ring for it; calls whose phones already ring (`offered`) are not served again."""
    team = secretaries_in(view, members)
    by_uri = {a.uri: a for a in team}
    waiting = [Waiting(row, row.practice, row.queue, row.priority, row.enqueued_at, row.seq, row.line,
                       row.strategy, _zone(row.zone))
               for row in sorted(view.waiting, key=lambda r: r.call_id) if not row.offered]
    excluded = {w.session: w.session.tried for w in waiting}

    def who(w: Waiting) -> list[Secretary]:
        return [by_uri[u] for u in covering(w.practice, w.queue, w.line) if u in by_uri]

    out: list[tuple[WaitingRow, list[str]]] = []
    while (pair := serving.next_offer(waiting, who, excluded, now)) is not None:
        w, chosen = pair
        for a in chosen:
            a.activity = "ringing"
        waiting.remove(w)
        out.append((w.session, [a.id for a in chosen]))
    return out


def _zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.timezone.utc
