"""The service level's inputs, counted from the call events (a sink of the EventNotifier, beside MQTT
and the console's streams: callrouter.events.notifier).

../KPIS.md: service level = answered within `sl_threshold_s` / (calls for a secretary - short
abandons). A call is counted once its service level is known, so the ratio never dips while a call
is still within its threshold:

- answered while within the threshold: a call for a secretary, answered in threshold;
- still waiting when the threshold passes (a timer): a call for a secretary, not in threshold (a
  late answer adds nothing);
- ended before: a call for a secretary and, when the caller hung up within `short_abandon_s` of
  entering the queue, a short abandon (left out of both sides by the recording rule).

The clock is the call's entry into its first queue (a call put back in line, or queued again by its
overflow route, keeps it). Calls that overflowed before entering a queue (nobody logged in, the line
full) are calls for a secretary too: the recording rule adds `callrouter_overflows_total` of those
causes. The parameters and their defaults are the KPI module's (callrouter.domain.kpis.KpiParams).
Unlike the KPI module, which leaves a call out of the rates while it is in progress, a call still
waiting at the threshold counts at once: the live figure must drop while callers wait.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from callrouter.domain.kpis import KpiParams
from callrouter.domain.model import Dialplan
from callrouter.metrics import Metrics

logger = logging.getLogger(__name__)

MAX_TRACKED = 20_000  # calls followed at once; beyond (calls that never end: a bug), the oldest are dropped
THRESHOLD_GRACE_S = 0.05  # "within" includes the threshold itself (and clock rounding): 30.0 s is in time


DEFAULTS = KpiParams()


def params_of(dialplan: Dialplan | None) -> KpiParams:
    """The practice's service-level parameters: its dialplan's `kpis`, else the defaults."""
    return dialplan.kpis if dialplan is not None else DEFAULTS


@dataclass(eq=False)
class _Entered:
    practice: str
    at: float
    params: KpiParams
    timer: Any = None
    settled: bool = False


class ServiceLevelSink:
    """Given every event (topic, payload) on the reactor thread; counts the calls' service level."""

    def __init__(self, metrics: Metrics, clock: Any, params: Callable[[str], KpiParams]) -> None:
        """`clock`: the reactor (seconds, callLater); `params(practice)`: its thresholds."""
        self._metrics, self._clock, self._params = metrics, clock, params
        self._calls: dict[str, _Entered] = {}

    def publish(self, topic: str, payload: Mapping[str, Any] | None, retain: bool = False, qos: int = 0) -> None:
        parts = topic.split("/")
        if payload is None or len(parts) != 5 or parts[2] != "calls" or parts[4] != "state":
            return
        call_id, practice, state = payload.get("call_id"), payload.get("practice"), payload.get("state")
        if not call_id or not practice:
            return
        if state == "queued":
            self._entered(call_id, practice)
        elif state == "answered":
            self._answered(call_id)
        elif state == "ended":
            self._ended(call_id, payload.get("outcome"))

    def tracked(self) -> int:
        return len(self._calls)

    def _entered(self, call_id: str, practice: str) -> None:
        if call_id in self._calls:
            return
        if len(self._calls) >= MAX_TRACKED:
            oldest = next(iter(self._calls))
            logger.warning("service level: %d calls followed at once, forgetting call %s", MAX_TRACKED, oldest)
            self._forget(oldest)
        params = self._params(practice)
        entry = _Entered(practice, self._clock.seconds(), params)
        entry.timer = self._clock.callLater(params.sl_threshold_s + THRESHOLD_GRACE_S, self._threshold_passed, call_id)
        self._calls[call_id] = entry

    def _threshold_passed(self, call_id: str) -> None:
        entry = self._calls.get(call_id)
        if entry is not None and not entry.settled:
            entry.timer = None
            self._settle(entry, in_threshold=False)

    def _answered(self, call_id: str) -> None:
        entry = self._calls.get(call_id)
        if entry is not None and not entry.settled:
            waited = self._clock.seconds() - entry.at
            self._settle(entry, in_threshold=waited <= entry.params.sl_threshold_s + THRESHOLD_GRACE_S)

    def _ended(self, call_id: str, outcome: Any) -> None:
        entry = self._calls.get(call_id)
        if entry is None:
            return
        if not entry.settled:
            short = outcome == "abandoned" and self._clock.seconds() - entry.at <= entry.params.short_abandon_s
            self._settle(entry, in_threshold=False, short_abandon=short)
        self._forget(call_id)

    def _settle(self, entry: _Entered, in_threshold: bool, short_abandon: bool = False) -> None:
        entry.settled = True
        self._cancel(entry)
        m = self._metrics
        m.calls_for_secretary.labels(entry.practice).inc()
        if in_threshold:
            m.answered_in_threshold.labels(entry.practice).inc()
        if short_abandon:
            m.short_abandons.labels(entry.practice).inc()

    def _forget(self, call_id: str) -> None:
        entry = self._calls.pop(call_id, None)
        if entry is not None:
            self._cancel(entry)

    @staticmethod
    def _cancel(entry: _Entered) -> None:
        if entry.timer is not None and entry.timer.active():
            entry.timer.cancel()
        entry.timer = None
