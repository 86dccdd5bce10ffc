"""The conference bridge's clock, running only while some leg has audio.

pjsua clocks its conference bridge from the sound device; a worker has none, so the "null" sound
device (a thread ticking every 20 ms) stands in. Left open, it ticks in an idle worker forever;
pjsua's own remedy, closing it after `sndAutoCloseTime` idle seconds, is a timer of its own. So
auto-close is off, the worker starts with no device, and this class opens the null device when a
leg's audio becomes active and closes it once no leg has any.

The bridge applies connections and removals on its clock ticks (pjmedia's conference queues them):
the clock stays on until the bridge holds no port but its own, so that the last players' and
recorders' removals (and their files' headers) are done before it stops. Stopping it joins its
thread, which sleeps up to a tick (20 ms) and holds pjsua's lock meanwhile: it is done once the
worker has had no audio for IDLE_S, not between two calls.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

IDLE_S = 2.0           # without audio before the clock stops
SETTLE_CHECK_S = 0.04  # then, while ports are still being removed
SETTLE_MAX_S = 2.0


class MediaClock:
    def __init__(self, endpoint: Any) -> None:
        self._ep = endpoint
        self._devices = endpoint.audDevManager()
        self._devices.setNoDev()
        self._baseline = endpoint.mediaActivePorts()
        self.on = False
        self.starts = 0
        self._idle_since: float | None = None

    def need(self) -> None:
        """Before anything is connected in the bridge."""
        self._idle_since = None
        if not self.on:
            self._devices.setNullDev()
            self.on = True
            self.starts += 1

    def update(self, wanted: bool, now: float) -> float | None:
        """`wanted`: some leg has audio (or media work is closing). Returns when to look again
        while the clock waits for the bridge to settle, else None."""
        if wanted:
            self.need()
            return None
        if not self.on:
            return None
        if self._idle_since is None:
            self._idle_since = now
        if now - self._idle_since < IDLE_S:
            return self._idle_since + IDLE_S
        settled = self._ep.mediaActivePorts() <= self._baseline
        if not settled and now - self._idle_since < IDLE_S + SETTLE_MAX_S:
            return now + SETTLE_CHECK_S
        if not settled:
            logger.warning("conference bridge still holds %s port(s) %.1fs after the last call: clock stopped anyway",
                           self._ep.mediaActivePorts() - self._baseline, SETTLE_MAX_S)
        self._devices.setNoDev()
        self.on = False
        self._idle_since = None
        return None
