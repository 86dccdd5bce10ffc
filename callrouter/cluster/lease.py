"""What a node believes of its own lease, as a pure state machine: times are arguments.

The database is the judge: a lease row holds until `expires_at`, set by the database's own clock
to *its* time of the renewal plus the lease's length. The node cannot read that clock, but it
knows when it sent the renewal (`sent_at`, on its own clock), and the database renewed it later
than that. So the node may believe it holds the lease until `sent_at + lease_s` on its own clock,
minus a margin for the two clocks not running at exactly the same rate: it then always stops
before the database lets another node take over (the property tests/cluster check). A renewal
that fails (database unreachable) changes nothing: the belief runs out on time.

Phases: `joining` (no lease: acquire one, which gives a new epoch), `held` (renew it; held only
while `now < until`), `out` (a newer process took this node's name: never rejoin, the newer one
is the node now). A renewal the database refuses because the lease expired sends the node back to
`joining`: it comes back under a new epoch, so whatever it held under the old one is gone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum

ACQUIRE, RENEW = "acquire", "renew"
RENEWED, EXPIRED, SUPERSEDED = "renewed", "expired", "superseded"  # what the store says of a renewal


class Phase(str, Enum):
    JOINING = "joining"
    HELD = "held"
    OUT = "out"


@dataclass(frozen=True)
class LeaseTiming:
    lease_s: float
    renew_s: float

    @property
    def margin_s(self) -> float:
        """Slack for the clocks' rates (a few parts per million in practice; 2% here)."""
        return max(0.02 * self.lease_s, 0.01)

    def believed_until(self, sent_at: float) -> float:
        return sent_at + self.lease_s - self.margin_s


@dataclass(frozen=True)
class NodeState:
    phase: Phase = Phase.JOINING
    epoch: int | None = None
    until: float = -math.inf      # on the node's clock: held before this instant
    why: str | None = None        # why the last lease was lost, or why the node is out

    def holds(self, now: float) -> bool:
        return self.phase is Phase.HELD and now < self.until

    def due(self) -> str | None:
        """What to ask the store at the next tick."""
        return {Phase.JOINING: ACQUIRE, Phase.HELD: RENEW}.get(self.phase)


def acquired(state: NodeState, epoch: int, sent_at: float, timing: LeaseTiming) -> NodeState:
    """The store gave this node a lease under `epoch` (a request sent at `sent_at`)."""
    if state.phase is Phase.OUT:
        return state
    return NodeState(Phase.HELD, epoch, timing.believed_until(sent_at))


def renewed(state: NodeState, outcome: str, sent_at: float, timing: LeaseTiming) -> NodeState:
    """The store's answer to a renewal sent at `sent_at`."""
    if state.phase is not Phase.HELD:
        return state
    if outcome == RENEWED:
        return replace(state, until=max(state.until, timing.believed_until(sent_at)))
    if outcome == SUPERSEDED:
        return NodeState(Phase.OUT, why="a newer process took this node's name")
    return NodeState(Phase.JOINING, why="the lease expired before it was renewed")


def loss(held_epoch: int | None, after: NodeState, now: float) -> str | None:
    """Why a node that held its lease under `held_epoch` when it last looked does not hold it at
    `now` (state `after`); None when it still does, or held none: each loss is told once."""
    if held_epoch is None or after.holds(now) and after.epoch == held_epoch:
        return None
    if after.phase is Phase.HELD and after.epoch == held_epoch:
        return "not renewed in time"
    return after.why or "lost"
