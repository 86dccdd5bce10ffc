"""How many media workers the pool wants: pure (no I/O, time is an argument).

Slots: a worker holds `cap` legs (4 with the PyPI pjsua2 wheel). A caller takes one slot while she
is in the menu or the queue; her secretary's leg takes a second one, on her worker or, when hers
is full, on another worker joined to hers by a relay (worker/relay.py). So the pool sets no slot
aside per caller: it keeps a floor of spare capacity, in calls (each a slot for the caller and one
for a second leg), ahead of the traffic:

    spare calls = min(free slots // 2, room for callers)

The room for callers is what the edge will still send: each worker's free slots, or fewer when the
edge sends a worker at most `callers_per_worker` callers (`sip.worker_max_calls`; 0: no limit but
the cap).

The floor is `spare_calls`, or the calls that arrive in `arrival_lead_seconds` at the recent rate
when that is more (a burst grows the pool while it lasts). Workers still starting count as the
slots they will bring. Below the floor, workers are added (retiring ones first, since they run
already): a second leg takes its slot from the floor, and the floor is made up again in the time
a worker takes to start (about 0.1 s here). That holds up to `workers_max`. There the plan says so
(`at_max`); and once it runs `workers_max` workers, the pool stops taking new callers while the
callers already in need every free slot for their second legs (`admit` is False): a caller in the queue gets her secretary's leg
before a new caller gets a slot.

A worker with no leg for `idle_retire_seconds` is retired, highest position first, while the
spare stays at the floor or above and the pool above `workers_min` (and the workers `legs_wanted`
asks for); the idle period is what keeps the pool from retiring and adding in turn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

STARTING, READY, RETIRING, REVIVABLE = "starting", "ready", "retiring", "revivable"


@dataclass(frozen=True)
class WorkerView:
    """One worker position as the plan sees it. `state`: starting, ready, revivable (retiring,
    its end not yet sent: it can be put back), retiring (leaving), or anything else (down...)."""

    index: int
    state: str
    cap: int
    legs: int
    idle_since: float | None = None  # when it last became empty (None: it holds legs)
    callers: int = 0                 # of its legs, the incoming ones (the edge counts those)


@dataclass(frozen=True)
class Sizing:
    """The settings the plan reads (a subset of MediaSettings)."""

    workers_min: int = 1
    workers_max: int = 64
    legs_wanted: int = 8
    spare_calls: int = 8
    arrival_lead_seconds: float = 1.0
    idle_retire_seconds: float = 300.0
    callers_per_worker: int = 0      # the edge's limit of callers sent to one worker (0: the cap)


@dataclass(frozen=True)
class Capacity:
    free_slots: int      # slots the ready workers can still take
    waiting: int         # callers without a second leg yet
    spare_calls: int     # new calls the ready workers take at once, each with room for a second leg
    floor: int           # spare calls wanted ahead of the traffic
    workers: int         # starting and ready


@dataclass(frozen=True)
class Plan:
    start: int                  # workers to start
    revive: tuple[int, ...]     # retiring workers to put back
    retire: tuple[int, ...]     # idle workers to retire
    at_max: bool                # more workers were wanted than workers_max allows
    admit: bool                 # new callers may be taken (False: every free slot is a caller's)
    capacity: Capacity


def floor_calls(s: Sizing, arrivals_per_s: float) -> int:
    return max(s.spare_calls, math.ceil(arrivals_per_s * s.arrival_lead_seconds))


def plan(workers: Sequence[WorkerView], waiting: int, arrivals_per_s: float, now: float, cap: int | None,
         s: Sizing) -> Plan:
    """What to do now. `cap`: legs per worker (None until a first worker reported it);
    `waiting`: callers without a second leg yet; `arrivals_per_s`: the recent rate of new calls."""
    ready = [w for w in workers if w.state == READY]
    starting = [w for w in workers if w.state == STARTING]
    revivable = sorted((w for w in workers if w.state == REVIVABLE), key=lambda w: w.index)
    running = sum(1 for w in workers if w.state in (STARTING, READY, RETIRING, REVIVABLE))
    free = sum(max(0, w.cap - w.legs) for w in ready)
    floor = floor_calls(s, arrivals_per_s)
    active = len(ready) + len(starting)
    if cap is None:  # nothing known yet: the minimum, then the plan proper once a worker is ready
        start = max(0, min(s.workers_min, s.workers_max) - running)
        return Plan(start, (), (), False, True, Capacity(free, waiting, 0, floor, active))
    limit = min(cap, s.callers_per_worker or cap)
    callers_room = sum(max(0, min(w.cap - w.legs, limit - w.callers)) for w in ready)
    spare = min(free // 2, callers_room)
    future = free + len(starting) * cap
    minimum = max(s.workers_min, math.ceil(s.legs_wanted / cap))
    missing_legs = 2 * floor - future
    missing_callers = floor - (callers_room + len(starting) * limit)
    want = max(minimum - active, math.ceil(missing_legs / cap) if missing_legs > 0 else 0,
               math.ceil(missing_callers / limit) if missing_callers > 0 else 0, 0)
    revive = tuple(w.index for w in revivable[:want])
    want -= len(revive)
    room = max(0, s.workers_max - running)
    start = min(want, room)
    at_max = want > room
    # At workers_max, a new caller takes a slot only while those waiting keep one each for their
    # second leg (and hers), counting the workers on their way.
    grown = running + start >= s.workers_max
    admit = not grown or future + (start + len(revive)) * cap - waiting >= 2
    at_max = at_max or not admit
    retire: list[int] = []
    if want <= 0 and not revive:
        retire = _retirable(ready, active, free, callers_room, limit, floor, minimum, now, s)
    return Plan(start, revive, tuple(retire), at_max, admit, Capacity(free, waiting, spare, floor, active))


def _retirable(ready: list[WorkerView], active: int, free: int, callers_room: int, limit: int, floor: int,
               minimum: int, now: float, s: Sizing) -> list[int]:
    out = []
    idle = [w for w in ready if w.legs == 0 and w.idle_since is not None
            and now - w.idle_since >= s.idle_retire_seconds]
    for w in sorted(idle, key=lambda w: -w.index):
        if active - 1 < minimum:
            break
        if min((free - w.cap) // 2, callers_room - limit) < floor:
            break
        out.append(w.index)
        active -= 1
        free -= w.cap
        callers_room -= limit
    return out
