"""A worker position of the media pool, and what its status shows."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from callrouter.media import protocol as p
from callrouter.media.worker_process import WorkerProcess

logger = logging.getLogger("callrouter.media.pool")


@dataclass
class WorkerSlot:
    """One worker position: a fixed name and ports; the process in it comes and goes."""

    index: int
    name: str
    sip_port: int
    rtp_port: int
    state: str = "down"              # down -> starting -> ready -> (retiring ->) down | stopping
    cap: int = 0
    pid: int | None = None
    legs: set[str] = field(default_factory=set)
    failures: int = 0
    ready_at: float | None = None
    idle_since: float | None = None  # when it last held no leg
    transport: Any = None
    timer: Any = None                # pending restart, ready timeout or retirement step
    ended: defer.Deferred | None = None
    retire_phase: str = ""           # "edge", "grace", "sent" while retiring
    generation: int = 0              # bumped when a retirement starts or is called off
    restarts: int = 0                # processes started again after this one died
    held: int = 0                    # call slots its pjsua still holds for legs already ended

    @property
    def used(self) -> int:
        """The call slots taken: its live legs, and those pjsua has not freed yet (slot_events.py)."""
        return len(self.legs) + self.held


@dataclass(frozen=True)
class WorkerStatus:
    name: str
    sip_port: int
    state: str
    cap: int
    legs: int
    pid: int | None
    restarts: int = 0
    held: int = 0  # slots its pjsua still holds for legs already ended


def pick(slots: list[WorkerSlot], legs: int, reserved: int) -> WorkerSlot | None:
    """The ready worker with room for `legs` more legs, least loaded first (else one with room
    for some); None when the ready workers' free slots, less `reserved`, are fewer than `legs`."""
    ready = [s for s in slots if s.state == "ready"]
    if sum(s.cap - s.used for s in ready) - reserved < legs:
        return None
    candidates = [s for s in ready if s.used + legs <= s.cap] or [s for s in ready if s.used < s.cap]
    return min(candidates, key=lambda s: (s.used, s.index)) if candidates else None


def take_over(pool: Any, link: Any, workers: list, asked: list[str]) -> None:
    """The workers the media service already runs (channel.LiveWorker) put in their positions,
    every one held before any is ready (a ready worker makes the pool grow into the free
    positions); then each ready line replayed and each worker asked for its live legs (named in
    `asked` beforehand, so whoever waits for their reports knows them once the pool is ready)."""
    settings, found = pool.settings, []
    for worker in sorted(workers, key=lambda w: w.worker):
        index = int(worker.worker[1:]) if worker.worker[1:].isdigit() else -1
        if not 0 <= index < settings.workers_max:
            logger.warning("media worker %s is not a position of this pool: left alone", worker.worker)
            continue
        while len(pool._slots) <= index:
            i = len(pool._slots)
            pool._slots.append(WorkerSlot(index=i, name=f"w{i}", sip_port=settings.sip_port(i),
                                          rtp_port=settings.rtp_port(i)))
        slot = pool._slots[index]
        slot.state, slot.pid = "starting", worker.pid
        slot.timer = pool._reactor.callLater(settings.ready_timeout_seconds, pool._ready_timeout, slot)
        logger.info("media worker %s taken over (pid %s)", slot.name, worker.pid)
        slot.transport = link.attach(worker, WorkerProcess(pool, slot))
        found.append((slot, worker))
        if worker.ready is not None:
            asked.append(slot.name)
    for slot, worker in found:
        if worker.ready is not None:
            slot.transport.proto.outReceived(worker.ready + b"\n")
        if slot.state == "ready":
            pool._write(slot, p.ReportLegs())


def reported(pool: Any, slot: WorkerSlot, event: p.LegReport) -> None:
    """A live leg of a worker taken over: held by it, a caller (waiting for her second leg unless
    joined to one), its relays known again."""
    pool._adopt(slot, event.leg)
    if not event.outgoing:
        pool._callers.add(event.leg)
        if not event.bridged and not event.relays:
            pool._waiting.add(event.leg)
    for relay in filter(None, event.relays.split(",")):
        pool.relays.adopt(slot, relay, event.leg)
