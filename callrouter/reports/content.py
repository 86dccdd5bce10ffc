"""What a practice's report says, built from the records by callrouter.domain.kpis and nothing
else: the period's figures, the same per local day, the calls per weekday and hour, the answer
times of the answered calls and the escalation chains of the period. Every renderer (text, CSV,
JSON, HTML, PDF) reads this one value, so they all give the same number.

Pure: records and time zone in, `Report` out; `generated_at` is given by the caller.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from callrouter.domain.kpis import (
    EscalationFact, KpiParams, KpiRecords, Period, PracticeKpis, answer_time_s, by_day, by_hour, classify,
    practice_kpis,
)

MAX_DAYS = 366  # a report covers at most a year of local days


@dataclass(frozen=True)
class Report:
    practice: str
    name: str  # the practice's name, as its dialplan gives it
    zone: ZoneInfo
    period: Period
    kpis: PracticeKpis
    days: tuple[PracticeKpis, ...]
    # Calls received per local weekday (0 = Monday) and hour of the day (0 to 23).
    heat: tuple[tuple[int, ...], ...]
    answer_times: tuple[float, ...]  # seconds, of the answered calls, in arrival order
    chains: tuple[EscalationFact, ...]  # started in the period, in start order
    generated_at: dt.datetime

    @property
    def params(self) -> KpiParams:
        return self.kpis.params

    def to_json(self) -> dict:
        return {**self.kpis.to_json(), "name": self.name, "generated_at": self.generated_at.isoformat(),
                "days": [{"date": d.period.start.isoformat(), "received": d.calls.received,
                          "for_secretary": d.calls.for_secretary, "answered": d.calls.answered,
                          "service_level": d.calls.service_level.to_json(), "missed": d.calls.missed.to_json(),
                          "answer_time": d.calls.answer_time.to_json()} for d in self.days],
                "calls_by_weekday_and_hour": [list(row) for row in self.heat],
                "answer_times_s": [round(t, 1) for t in self.answer_times],
                "unacknowledged": [_chain_json(c, self.zone) for c in self.unacknowledged()]}

    def unacknowledged(self) -> tuple[EscalationFact, ...]:
        """The chains that ended with nobody acknowledging, one by one (kpis.TierFigures)."""
        ids = {i for t in self.kpis.escalations for i in t.unacknowledged}
        return tuple(c for c in self.chains if c.id in ids)


def build_report(practice: str, name: str, zone: ZoneInfo, period: Period, records: KpiRecords,
                 generated_at: dt.datetime, params: KpiParams = KpiParams()) -> Report:
    if (period.end - period.start).days > MAX_DAYS:
        raise ValueError(f"a report covers at most {MAX_DAYS} days")
    since, until = period.bounds(zone)
    kpis = practice_kpis(practice, period, zone, records, params)
    heat = [[0] * 24 for _ in range(7)]
    for one_day in period.days():
        for hour, figures in enumerate(by_hour(practice, one_day, zone, records, params)):
            heat[one_day.start.weekday()][hour] += figures.received
    calls = [c for c in records.calls if c.practice == practice and since <= c.arrived_at < until]
    times = tuple(t for c in calls if classify(c, params) == "answered" and (t := answer_time_s(c)) is not None)
    chains = tuple(sorted((e for e in records.escalations if e.practice == practice
                           and since <= e.started_at < until), key=lambda e: (e.started_at, e.id)))
    return Report(practice, name, zone, period, kpis, by_day(practice, period, zone, records, params),
                  tuple(tuple(row) for row in heat), times, chains, generated_at)


def last_full_week(now: dt.datetime, zone: ZoneInfo) -> Period:
    """The ISO week before the one `now` falls in, in the practice's local days."""
    year, week, _ = (now.astimezone(zone).date() - dt.timedelta(days=7)).isocalendar()
    return Period.iso_week(year, week)


def period_of(start: dt.date | None, end: dt.date | None, now: dt.datetime, zone: ZoneInfo) -> Period:
    """The local days `start` to `end`, both included; no date: the last full ISO week; one
    date: the seven days it starts (or ends)."""
    if start is None and end is None:
        return last_full_week(now, zone)
    if start is None:
        start = end - dt.timedelta(days=6)
    if end is None:
        end = start + dt.timedelta(days=6)
    if end < start:
        raise ValueError(f"the last day ({end}) is before the first ({start})")
    if (end - start).days + 1 > MAX_DAYS:
        raise ValueError(f"a report covers at most {MAX_DAYS} days")
    return Period(start, end + dt.timedelta(days=1))


def _chain_json(c: EscalationFact, zone: ZoneInfo) -> dict:
    return {"id": c.id, "tier": c.tier, "started_at": c.started_at.astimezone(zone).isoformat(),
            "outcome": c.outcome, "declined": c.declined, "taken_at": c.taken_at.isoformat() if c.taken_at else None}
