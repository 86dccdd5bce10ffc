"""Settings of the media worker pool (to be read from the daemon's settings file by config.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from callrouter.media.sizing import Sizing


@dataclass(frozen=True)
class MediaSettings:
    """How many media workers to run, where they listen, and how they are restarted.

    The pool follows the load (callrouter.media.sizing): it keeps `spare_calls` calls of spare
    capacity (or the calls of the last `arrival_lead_seconds` at the recent rate, when more) ahead
    of the traffic, adding workers up to `workers_max` and retiring those idle for
    `idle_retire_seconds` down to `max(workers_min, ceil(legs_wanted / cap))`; `cap` is the call cap
    each worker reports when it starts (4 with the PyPI pjsua2 wheel; a bridged call takes 2). A
    retired worker is taken out of the edge's dispatcher first, then given `retire_grace_seconds`
    for calls already on their way, then told to refuse new calls and to exit once empty.
    Worker i listens for SIP on `sip_port_base + i` (Kamailio's dispatcher sends INVITEs there) and
    takes RTP ports from `rtp_port_base + i * rtp_ports_per_worker`. While the controller's reactor
    lags `shed_lag_ms` or more behind its timers, the edge refuses new calls with 503 and
    Retry-After (callrouter.media.overload; 0: never).

    The cap belongs to the installed pjsua2 build and is only known once the first worker starts,
    so `legs_wanted` beyond `workers_max` workers of that cap cannot be refused at load: the pool
    then logs an error naming both settings and the numbers, and runs `workers_max` workers. What
    no cap can serve (more legs than `workers_max` workers have RTP port pairs for) is refused here.
    """

    legs_wanted: int = 8
    workers_min: int = 1
    workers_max: int = 64
    bind: str = "127.0.0.1"
    sip_port_base: int = 5070
    rtp_port_base: int = 20000
    rtp_ports_per_worker: int = 200
    pj_log_level: int = 1
    ready_timeout_seconds: float = 20.0
    stop_timeout_seconds: float = 5.0
    restart_delay_seconds: float = 0.5
    restart_delay_max_seconds: float = 30.0
    restart_backoff_factor: float = 2.0
    stable_after_seconds: float = 60.0
    spare_calls: int = 8
    arrival_lead_seconds: float = 1.0
    idle_retire_seconds: float = 300.0
    retire_grace_seconds: float = 1.0
    shed_lag_ms: int = 0

    @property
    def sizing(self) -> Sizing:
        return Sizing(workers_min=self.workers_min, workers_max=self.workers_max, legs_wanted=self.legs_wanted,
                      spare_calls=self.spare_calls, arrival_lead_seconds=self.arrival_lead_seconds,
                      idle_retire_seconds=self.idle_retire_seconds)

    def problems(self) -> list[str]:
        """What is wrong with these values (empty when they are usable)."""
        out = []
        if self.legs_wanted < 1:
            out.append("legs_wanted must be at least 1")
        elif self.legs_wanted > self.workers_max * (self.rtp_ports_per_worker // 2):
            out.append(f"legs_wanted {self.legs_wanted} is more than workers_max {self.workers_max} workers "
                       f"can ever hold: each has rtp_ports_per_worker {self.rtp_ports_per_worker} ports, "
                       f"an RTP/RTCP pair per leg, so {self.workers_max * (self.rtp_ports_per_worker // 2)} "
                       f"legs at most")
        if not 1 <= self.workers_min <= self.workers_max:
            out.append("workers_min must be at least 1 and at most workers_max")
        if not 1 <= self.sip_port_base <= 65535 - self.workers_max:
            out.append("sip_port_base leaves no room for workers_max consecutive ports")
        if self.rtp_ports_per_worker < 8 or self.rtp_ports_per_worker % 2:
            out.append("rtp_ports_per_worker must be even and at least 8")
        if self.rtp_port_base + self.workers_max * self.rtp_ports_per_worker > 65535:
            out.append("rtp_port_base + workers_max * rtp_ports_per_worker exceeds 65535")
        if self.restart_delay_seconds <= 0 or self.restart_delay_max_seconds < self.restart_delay_seconds:
            out.append("restart delays must be positive, the maximum not below the first")
        if self.restart_backoff_factor < 1:
            out.append("restart_backoff_factor must be >= 1")
        if self.spare_calls < 1:
            out.append("spare_calls must be at least 1: the room for the next caller and her secretary's leg")
        if self.arrival_lead_seconds < 0 or self.idle_retire_seconds < 0 or self.retire_grace_seconds < 0:
            out.append("arrival_lead_seconds, idle_retire_seconds and retire_grace_seconds must be >= 0")
        if self.shed_lag_ms < 0:
            out.append("shed_lag_ms must be >= 0 (0: new calls are never refused for the controller's lag)")
        return out

    def workers_needed(self, cap: int) -> int:
        """Workers of `cap` legs each that `legs_wanted` asks for (workers_max not applied)."""
        return max(self.workers_min, math.ceil(self.legs_wanted / max(1, cap)))

    def shortfall(self, cap: int) -> str | None:
        """Why `legs_wanted` cannot be met with workers of `cap` legs, or None when it can."""
        needed = self.workers_needed(cap)
        if needed <= self.workers_max:
            return None
        return (f"media.legs_wanted {self.legs_wanted} needs {needed} workers of {cap} legs, above "
                f"media.workers_max {self.workers_max}: running {self.workers_max} workers "
                f"({self.workers_max * cap} legs); raise media.workers_max or lower media.legs_wanted")

    def sip_port(self, index: int) -> int:
        return self.sip_port_base + index

    def rtp_port(self, index: int) -> int:
        return self.rtp_port_base + index * self.rtp_ports_per_worker
