"""The indicators practices review (docs/wallboard.md, "The indicators"), computed once, from
plain records.

Pure: records in (calls, callback tasks, escalation chains as frozen facts), figures out; no
database and no clock. The period and the practice's time zone are arguments: a period is a run
of local days (callrouter.domain.periods: midnight to midnight in the practice's zone, DST days
included: 23 or 25 hours),
so the wallboard's "today", a weekly report and the API give the same figure for the same days.

Entry points: `practice_kpis` (one practice, one period -> `PracticeKpis`), `by_day` and
`by_hour` (the same figures per local day, per local hour of the day), and `call_figures` for any
group of calls (a queue, a shared line).

How a call for a secretary is counted (each one in exactly one class, `classify`):

- *for a secretary*: it entered a queue, or it overflowed before entering one (nobody covering it
  was logged in, or the line was full: a call turned away is a call for a secretary too);
- *answered* by a secretary; *answer time* is from entering the queue to her answer;
- *short abandon*: hung up while waiting, within `short_abandon_s` of entering the queue; left out
  of both sides of the rates;
- *abandoned*: hung up while waiting, after that limit; *overflowed*: sent to the overflow route
  (voicemail, a message, hang-up) and not answered; both are *missed*;
- *callback*: accepted a callback (she is counted in the callback figures, not missed);
- *failed*: ended by a technical failure; *in progress*: neither answered nor ended yet (waiting or
  ringing now). Calls in progress are left out of the rates until they end.

Service level = answered within `sl_threshold_s` / rated calls, missed-call rate = (abandoned +
overflowed) / rated calls, where rated calls = calls for a secretary - short abandons - calls in
progress. A rate whose denominator is 0 is None (shown "-"), never 0% or 100%. Percentiles are
linear between the closest ranks (p50 is the median).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from callrouter.domain.periods import Period, within as _within

SHORT_ABANDON_S = 5.0
SL_THRESHOLD_S = 30.0
SL_TARGET = 0.8
CLASSES = ("other", "answered", "short_abandon", "abandoned", "overflowed", "callback", "failed", "in_progress")
# What an out-of-hours caller got, first match wins.
GOT = ("escalation", "secretary", "voicemail", "callback", "message", "menu", "other")
IN_HOURS_ROUTES = frozenset({"open", "none"})  # "none": a number no practice has


@dataclass(frozen=True)
class KpiParams:
    """The definitions' parameters (a practice may agree other values with its secretariat)."""

    short_abandon_s: float = SHORT_ABANDON_S
    sl_threshold_s: float = SL_THRESHOLD_S
    sl_target: float = SL_TARGET


# --- the records, as plain facts ---------------------------------------------------------------------

@dataclass(frozen=True)
class CallFact:
    """One call record. `route`: the route its arrival got (open, closed, holiday, closure...);
    `overflow`: why it overflowed (nobody, length, wait), None if it did not; `menu`: it pressed
    keys in a menu."""

    id: str
    practice: str
    arrived_at: dt.datetime
    route: str | None = None
    queue: str | None = None
    queued_at: dt.datetime | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    outcome: str | None = None
    overflow: str | None = None
    menu: bool = False


@dataclass(frozen=True)
class TaskFact:
    """One callback task: `source` overflow | voicemail | secretary | node_lost; `state` as the task's."""

    id: str
    practice: str
    source: str
    created_at: dt.datetime
    state: str
    done_at: dt.datetime | None = None


@dataclass(frozen=True)
class EscalationFact:
    """One escalation chain; `declined`: how many practitioners answered they could not take it."""

    id: int
    practice: str
    tier: str
    started_at: dt.datetime
    state: str  # active | done
    outcome: str | None = None  # acknowledged | exhausted | cancelled
    acknowledged_at: dt.datetime | None = None
    declined: int = 0
    call_id: str | None = None
    taken_at: dt.datetime | None = None


@dataclass(frozen=True)
class KpiRecords:
    """What the figures are computed from; records outside the period are ignored."""

    calls: tuple[CallFact, ...] = ()
    tasks: tuple[TaskFact, ...] = ()
    escalations: tuple[EscalationFact, ...] = ()


# --- figures -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rate:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def to_json(self) -> dict:
        return {"numerator": self.numerator, "denominator": self.denominator, "rate": self.value}


@dataclass(frozen=True)
class Spread:
    """Durations in seconds: how many, p50, p90, mean (None when there is none)."""

    count: int = 0
    p50: float | None = None
    p90: float | None = None
    mean: float | None = None
    worst: float | None = None

    @classmethod
    def of(cls, values: Iterable[float]) -> "Spread":
        xs = sorted(values)
        if not xs:
            return cls()
        return cls(len(xs), percentile(xs, 0.5), percentile(xs, 0.9), sum(xs) / len(xs), xs[-1])

    def to_json(self) -> dict:
        return {"count": self.count, "p50_s": _round(self.p50), "p90_s": _round(self.p90),
                "mean_s": _round(self.mean), "worst_s": _round(self.worst)}


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear between the closest ranks (as numpy's default): q=0.5 is the median."""
    if not sorted_values:
        raise ValueError("no value")
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


@dataclass(frozen=True)
class CallFigures:
    received: int
    for_secretary: int
    answered: int
    answered_in_threshold: int
    short_abandons: int
    abandoned: int
    overflowed: int
    callbacks: int
    failed: int
    in_progress: int
    answer_time: Spread
    params: KpiParams

    @property
    def rated(self) -> int:
        return self.for_secretary - self.short_abandons - self.in_progress

    @property
    def service_level(self) -> Rate:
        return Rate(self.answered_in_threshold, self.rated)

    @property
    def missed(self) -> Rate:
        return Rate(self.abandoned + self.overflowed, self.rated)

    def to_json(self) -> dict:
        return {"received": self.received, "for_secretary": self.for_secretary, "answered": self.answered,
                "short_abandons": self.short_abandons, "abandoned": self.abandoned, "overflowed": self.overflowed,
                "callbacks": self.callbacks, "failed": self.failed, "in_progress": self.in_progress,
                "answer_time": self.answer_time.to_json(),
                "service_level": {**self.service_level.to_json(), "threshold_s": self.params.sl_threshold_s,
                                  "target": self.params.sl_target},
                "missed": self.missed.to_json()}


def classify(call: CallFact, params: KpiParams = KpiParams()) -> str:
    """The one class of CLASSES a call falls in (see the module's docstring)."""
    if call.queued_at is None and call.overflow is None and call.answered_at is None:
        return "other"
    if call.answered_at is not None:
        return "answered"
    if call.ended_at is None:
        return "in_progress"
    if call.outcome == "callback_requested":
        return "callback"
    if call.outcome == "failed":
        return "failed"
    if call.overflow is None and call.outcome == "abandoned":
        waited = (call.ended_at - call.queued_at).total_seconds() if call.queued_at else 0.0
        return "short_abandon" if waited <= params.short_abandon_s else "abandoned"
    return "overflowed"


def answer_time_s(call: CallFact) -> float | None:
    if call.answered_at is None or call.queued_at is None:
        return None
    return max(0.0, (call.answered_at - call.queued_at).total_seconds())


def call_figures(calls: Iterable[CallFact], params: KpiParams = KpiParams()) -> CallFigures:
    """The call indicators of any set of calls (a practice's period, a queue, a shared line)."""
    counts = dict.fromkeys(CLASSES, 0)
    times: list[float] = []
    received = 0
    for call in calls:
        received += 1
        kind = classify(call, params)
        counts[kind] += 1
        if kind == "answered":
            t = answer_time_s(call)
            if t is not None:
                times.append(t)
    in_threshold = sum(1 for t in times if t <= params.sl_threshold_s)
    return CallFigures(received, received - counts["other"], counts["answered"], in_threshold,
                       counts["short_abandon"], counts["abandoned"], counts["overflowed"], counts["callback"],
                       counts["failed"], counts["in_progress"], Spread.of(times), params)


@dataclass(frozen=True)
class CallbackFigures:
    created: int
    done: int
    expired: int
    cancelled: int
    still_open: int
    delay: Spread  # creation to done
    messages_left: int  # voicemail messages (each is a task)
    messages_called_back: int

    @property
    def completion(self) -> Rate:
        return Rate(self.done, self.created)

    def to_json(self) -> dict:
        return {"created": self.created, "done": self.done, "expired": self.expired,
                "cancelled": self.cancelled, "open": self.still_open, "completion": self.completion.to_json(),
                "delay": self.delay.to_json(),
                "messages": {"left": self.messages_left, "called_back": self.messages_called_back}}


def callback_figures(tasks: Iterable[TaskFact]) -> CallbackFigures:
    tasks = list(tasks)
    done = [t for t in tasks if t.state == "done"]
    delays = [(t.done_at - t.created_at).total_seconds() for t in done if t.done_at is not None]
    voicemail = [t for t in tasks if t.source == "voicemail"]
    return CallbackFigures(len(tasks), len(done), sum(1 for t in tasks if t.state == "expired"),
                           sum(1 for t in tasks if t.state == "cancelled"),
                           sum(1 for t in tasks if t.state in ("open", "assigned", "calling")),
                           Spread.of(max(0.0, d) for d in delays), len(voicemail),
                           sum(1 for t in voicemail if t.state == "done"))


@dataclass(frozen=True)
class TierFigures:
    tier: str
    started: int
    acknowledged: int
    declined_steps: int
    exhausted: int
    active: int
    ack_delay: Spread
    unacknowledged: tuple[int, ...]  # the chains that ended with nobody acknowledging, one by one

    def to_json(self) -> dict:
        return {"tier": self.tier, "started": self.started, "acknowledged": self.acknowledged,
                "declined_steps": self.declined_steps, "exhausted": self.exhausted, "active": self.active,
                "ack_delay_p50_s": _round(self.ack_delay.p50), "ack_delay_worst_s": _round(self.ack_delay.worst),
                "unacknowledged": list(self.unacknowledged)}


def escalation_figures(chains: Iterable[EscalationFact]) -> tuple[TierFigures, ...]:
    by_tier: dict[str, list[EscalationFact]] = {}
    for chain in chains:
        by_tier.setdefault(chain.tier, []).append(chain)
    out = []
    for tier, group in sorted(by_tier.items()):
        acked = [c for c in group if c.acknowledged_at is not None]
        out.append(TierFigures(
            tier, len(group), len(acked), sum(c.declined for c in group),
            sum(1 for c in group if c.outcome == "exhausted"), sum(1 for c in group if c.state == "active"),
            Spread.of(max(0.0, (c.acknowledged_at - c.started_at).total_seconds()) for c in acked),
            tuple(sorted(c.id for c in group if c.acknowledged_at is None and c.state != "active"
                         and c.outcome != "cancelled"))))
    return tuple(out)


@dataclass(frozen=True)
class OutOfHours:
    received: int
    got: Mapping[str, int]  # GOT -> calls

    def to_json(self) -> dict:
        return {"received": self.received, "got": dict(self.got)}


def out_of_hours(calls: Iterable[CallFact], escalated: frozenset[str]) -> OutOfHours:
    got = dict.fromkeys(GOT, 0)
    for call in calls:
        if call.route is None or call.route in IN_HOURS_ROUTES:
            continue
        got[_got(call, escalated)] += 1
    return OutOfHours(sum(got.values()), got)


def _got(call: CallFact, escalated: frozenset[str]) -> str:
    if call.id in escalated:
        return "escalation"
    if call.answered_at is not None:
        return "secretary"
    if call.outcome in ("voicemail", "callback_requested"):
        return "voicemail" if call.outcome == "voicemail" else "callback"
    if call.outcome == "announced":
        return "message"
    return "menu" if call.menu else "other"


# --- entry points ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PracticeKpis:
    practice: str
    period: Period
    zone: str
    calls: CallFigures
    callbacks: CallbackFigures
    escalations: tuple[TierFigures, ...]
    out_of_hours: OutOfHours
    params: KpiParams = field(default_factory=KpiParams)

    def to_json(self) -> dict:
        return {"practice": self.practice, "period": self.period.to_json(), "timezone": self.zone,
                "calls": self.calls.to_json(), "callbacks": self.callbacks.to_json(),
                "escalations": [t.to_json() for t in self.escalations],
                "out_of_hours": self.out_of_hours.to_json()}


def practice_kpis(practice: str, period: Period, zone: dt.tzinfo, records: KpiRecords,
                  params: KpiParams = KpiParams()) -> PracticeKpis:
    """Every indicator of `practice` over `period` (local days of `zone`)."""
    bounds = period.bounds(zone)
    calls = [c for c in records.calls if c.practice == practice and _within(c.arrived_at, bounds)]
    escalated = frozenset(e.call_id for e in records.escalations if e.call_id)
    return PracticeKpis(
        practice, period, str(zone), call_figures(calls, params),
        callback_figures(t for t in records.tasks if t.practice == practice and _within(t.created_at, bounds)),
        escalation_figures(e for e in records.escalations if e.practice == practice
                           and _within(e.started_at, bounds)),
        out_of_hours(calls, escalated), params)


def by_day(practice: str, period: Period, zone: dt.tzinfo, records: KpiRecords,
           params: KpiParams = KpiParams()) -> tuple[PracticeKpis, ...]:
    """`practice_kpis` for each local day of `period`."""
    return tuple(practice_kpis(practice, day, zone, records, params) for day in period.days())


def by_hour(practice: str, period: Period, zone: dt.tzinfo, records: KpiRecords,
            params: KpiParams = KpiParams()) -> tuple[CallFigures, ...]:
    """The call indicators per local hour of the day (0 to 23) over `period`, by arrival: the
    day's profile (a DST day's repeated hour counts in its hour)."""
    bounds = period.bounds(zone)
    hours: list[list[CallFact]] = [[] for _ in range(24)]
    for c in records.calls:
        if c.practice == practice and _within(c.arrived_at, bounds):
            hours[c.arrived_at.astimezone(zone).hour].append(c)
    return tuple(call_figures(h, params) for h in hours)
