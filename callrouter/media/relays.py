"""The pool's side of the relays: a bridge between legs of two workers (worker/relay.py).

A `bridge` of two legs on two workers opens a relay end on each (`relay_open`); once both have
reported their RTP port (`relay_ready`), each is told the other's (`relay_connect`) and the audio
flows. An `unbridge`, either leg's end (its worker closes its end and says `relay_ended`), an error
on either side, or a worker's death closes the other end. A `record_call` of the two legs goes to
the first leg's worker, once connected, with the relay as the other leg: both sides recorded
there, on one clock. The controller sees none of it: for it, the two legs are bridged.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from callrouter.media import protocol as p

logger = logging.getLogger(__name__)


@dataclass
class End:
    worker: Any   # the pool's slot
    leg: str
    port: int | None = None


@dataclass
class Relay:
    id: str
    ends: tuple[End, End]
    connected: bool = False
    legs: frozenset[str] = field(default_factory=frozenset)
    then: list[tuple[Any, p.Command]] = field(default_factory=list)  # sent once connected


class RelayBook:
    """`write(slot, command)` sends to a worker."""

    def __init__(self, write: Callable[[Any, p.Command], None]) -> None:
        self._write = write
        self._relays: dict[str, Relay] = {}
        self._seq = itertools.count(1)
        self._adopting: dict[str, End] = {}  # one end of a relay reported so far (adopt)

    def __len__(self) -> int:
        return len(self._relays)

    def route(self, a_slot: Any, b_slot: Any, command: Any) -> bool:
        """A bridge, unbridge or conversation recording of legs of two workers; False when it is
        none of those the relays do (an unbridge or recording of legs that were never joined)."""
        if isinstance(command, p.Bridge):
            self.bridge(a_slot, command.leg, b_slot, command.other)
            return True
        relay_id = self.of_pair(command.leg, command.other)
        if relay_id is None:
            return False
        if isinstance(command, p.Unbridge):
            self.close(relay_id)
        else:
            relay = self._relays[relay_id]
            recording = dataclasses.replace(command, other=relay_id)
            if relay.connected:
                self._write(a_slot, recording)
            else:
                relay.then.append((a_slot, recording))
        return True

    def bridge(self, a_slot: Any, a_leg: str, b_slot: Any, b_leg: str) -> str:
        relay = Relay(f"x{next(self._seq)}", (End(a_slot, a_leg), End(b_slot, b_leg)), legs=frozenset((a_leg, b_leg)))
        self._relays[relay.id] = relay
        for end in relay.ends:
            self._write(end.worker, p.RelayOpen(relay=relay.id, leg=end.leg))
        logger.info("relay %s: %s on %s with %s on %s", relay.id, a_leg, a_slot.name, b_leg, b_slot.name)
        return relay.id

    def of_pair(self, a_leg: str, b_leg: str) -> str | None:
        pair = frozenset((a_leg, b_leg))
        return next((r.id for r in self._relays.values() if r.legs == pair), None)

    def adopt(self, slot: Any, relay_id: str, leg: str) -> None:
        """An end of a relay a worker taken over reports (leg_report): the relay is known again,
        connected, once both ends are; its id is never given to a new relay."""
        if relay_id[1:].isdigit():
            self._seq = itertools.count(max(next(self._seq), int(relay_id[1:]) + 1))
        first = self._adopting.pop(relay_id, None)
        if first is None:
            self._adopting[relay_id] = End(slot, leg)
            return
        self._relays[relay_id] = Relay(relay_id, (first, End(slot, leg)), connected=True,
                                       legs=frozenset((first.leg, leg)))

    def ready(self, slot: Any, relay_id: str, port: int) -> None:
        relay = self._relays.get(relay_id)
        if relay is None:  # closed meanwhile: its end opened late
            self._write(slot, p.RelayClose(relay=relay_id))
            return
        for end in relay.ends:
            if end.worker is slot:
                end.port = port
        a, b = relay.ends
        if a.port is not None and b.port is not None and not relay.connected:
            relay.connected = True
            self._write(a.worker, p.RelayConnect(relay=relay.id, port=b.port))
            self._write(b.worker, p.RelayConnect(relay=relay.id, port=a.port))
            then, relay.then = relay.then, []
            for slot, command in then:
                self._write(slot, command)

    def close(self, relay_id: str, except_slot: Any = None) -> None:
        """Close both ends (but the one on `except_slot`, closed already)."""
        relay = self._relays.pop(relay_id, None)
        if relay is None:
            return
        for end in relay.ends:
            if end.worker is not except_slot:
                self._write(end.worker, p.RelayClose(relay=relay_id))

    def ended(self, slot: Any, relay_id: str) -> None:
        """A worker closed its end by itself (its leg ended) or could not open or connect it."""
        self.close(relay_id, except_slot=slot)

    def worker_gone(self, slot: Any) -> None:
        for relay_id in [r.id for r in self._relays.values() if any(e.worker is slot for e in r.ends)]:
            self.close(relay_id, except_slot=slot)
