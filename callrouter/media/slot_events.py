"""The worker's report of the call slots pjsua still holds for legs it already reported ended
(the `slots_held` event of protocol.py).

pjsua reports a leg hung up here as disconnected at once, but keeps its call slot until the
INVITE session ends: the BYE answered (a phone that never answers held it up to pjsip's
transaction timeout), the CANCEL's 487 received. A worker's INVITE beyond its cap fails with
PJ_ETOOMANY, so the pool counts these slots taken until the worker says pjsua freed them.

Pure: no pjsua2, no Twisted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class SlotsHeld:
    """`held`: pjsua's call slots in use beyond the worker's live legs (legs hung up whose SIP
    dialog has not ended yet, calls refused at once). Sent whenever it changes, before the
    `leg_ended` that raised it; after `legs_reported` when not 0."""

    type: ClassVar[str] = "slots_held"
    held: int
