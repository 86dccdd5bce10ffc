"""The call slots pjsua holds beyond the worker's live legs, reported to the pool (`slots_held`).

pjsua reports a leg hung up here as disconnected at once (`pjsua_call_hangup` calls back with
DISCONNECTED before it sends the BYE or CANCEL) but frees its call slot only once the INVITE
session ends: the BYE answered, the CANCEL's 487 received and acknowledged, or the transaction
timed out. No callback says when. So the count is read (`pjsua_call_get_count`, one C call)
after every turn of the loop, and every POLL_S while some slot is held; a change is reported,
before the `leg_ended` that raised it, so that the pool never counts a held slot free.
"""

from __future__ import annotations

from typing import Callable

from callrouter.media import protocol as p
from callrouter.media.slot_events import SlotsHeld

POLL_S = 0.2  # while a slot is held: how often the count is read again (nothing calls back)


class SlotWatch:
    def __init__(self, in_use: Callable[[], int], live: Callable[[], int],
                 emit: Callable[[p.Event], None]) -> None:
        """`in_use`: pjsua's call slots in use; `live`: the worker's live legs."""
        self._in_use, self._live, self._emit = in_use, live, emit
        self.held = 0

    def check(self) -> None:
        """Report the held slots if they changed since last said."""
        held = max(0, self._in_use() - self._live())
        if held != self.held:
            self.held = held
            self._emit(SlotsHeld(held=held))

    def report(self) -> None:
        """Say the held slots again (a controller taking the worker over knows none)."""
        self.held = max(0, self._in_use() - self._live())
        if self.held:
            self._emit(SlotsHeld(held=self.held))

    def next_deadline(self, now: float) -> float | None:
        return now + POLL_S if self.held else None
