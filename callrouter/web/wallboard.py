"""The supervisors' wallboard: GET /api/wallboard (team:read), everything the screen shows at once.

- Per practice, per queue and per shared line: calls waiting now and the longest wait (the live
  queue book, read through the `LiveBoard` port), answered and abandoned today and the service
  level today (the practice's local day, from the call records through callrouter.domain.kpis:
  the same figures as the reports), the secretaries covering it and how many of them are logged
  in and available. `open_now` is the practice's route decision now being "open" (its calendar:
  hours, holidays, closures); `alarm` is an open practice with queues and nobody logged in.
- The team: each secretary's state, pause reason, since when (`since`), calls today, softphone.
- Open escalations with their steps, and the exhausted ones nobody has taken in hand yet
  (`needs_attention`): the page blinks them until POST /api/escalations/{id}/take.

The live parts are on the reactor thread: `LiveBoard` is implemented by the application with the
desk's queue book (callrouter.app) and called from the API's thread. Caller numbers never appear.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence
from zoneinfo import ZoneInfo

from callrouter.auth.permissions import practice_scope
from callrouter.domain import calendar
from callrouter.domain.escalation_views import EscalationView
from callrouter.domain.kpis import CallFact, CallFigures, KpiParams, KpiRecords, Period, call_figures
from callrouter.domain.model import Dialplan
from callrouter.domain.routing import route_for
from callrouter.web.router import Context, Route, guarded

OFFLINE = "offline"


@dataclass(frozen=True)
class WaitingNow:
    """One entry of the queue book now: a caller on hold, or a callback task in line."""

    practice: str
    queue: str
    line: str  # "practice/queue", or "line:<name>" for a shared queue
    waited_s: float
    callback: bool = False


@dataclass(frozen=True)
class LiveView:
    waiting: tuple[WaitingNow, ...]
    covering: Mapping[tuple[str, str], tuple[str, ...]]  # (practice, queue) -> secretary ids, in order
    team: tuple[Mapping[str, Any], ...]  # the desk's secretary views (callrouter.ports.SecretaryDesk.views)


class LiveBoard(Protocol):
    """The live side (on the reactor thread), read from an API thread: blocking."""

    def live(self, queues: Sequence[tuple[str, str, str | None]]) -> LiveView:
        """The queue book now, who covers each (practice, queue, line) given, and the team."""


class DayRecords(Protocol):
    """callrouter.store.kpi_queries.KpiQueries."""

    def records(self, practices: Iterable[str], since: dt.datetime, until: dt.datetime) -> KpiRecords: ...


class OpenChains(Protocol):
    """callrouter.store.escalations.EscalationRepository."""

    def open_chains(self, practices: frozenset[str] | None) -> list[EscalationView]: ...


@dataclass(frozen=True)
class QueueRef:
    practice: str
    queue: str
    label: str
    line: str | None  # "line:<name>" when shared


@dataclass(frozen=True)
class WallboardApi:
    dialplans: Callable[[], Mapping[str, Dialplan]]
    live: LiveBoard
    records: DayRecords
    escalations: OpenChains | None = None  # None: escalation is not enabled
    display_names: Callable[[], Mapping[str, str]] = dict  # username -> display name
    params: KpiParams = KpiParams()

    def board(self, ctx: Context):
        now = ctx.now
        scope = practice_scope(ctx.user.role, ctx.user.attrs)
        plans = {p: d for p, d in sorted(self.dialplans().items()) if scope is None or p in scope}
        refs = [QueueRef(p, q.name, q.label, q.line) for p, d in plans.items() for q in d.queues.values()]
        live = self.live.live([(r.practice, r.queue, r.line) for r in refs])
        team = {str(v["id"]): v for v in live.team}
        today = {p: _today(d, now) for p, d in plans.items()}
        calls = self._calls_today(today)
        practices = [self._practice(d, [r for r in refs if r.practice == p], live, team, calls, today[p][0], now)
                     for p, d in plans.items()]
        names = self.display_names()
        chains = self.escalations.open_chains(None if scope is None else frozenset(plans)) if self.escalations else []
        return {"at": now.isoformat(), "practices": practices, "lines": self._lines(refs, plans, live, team, calls),
                "team": [_member(v, names) for v in sorted(live.team, key=lambda v: str(v["id"]))],
                "escalations": [_chain(c, plans.get(c.practice)) for c in chains],
                "sl_target": self.params.sl_target, "sl_threshold_s": self.params.sl_threshold_s}

    # --- parts ------------------------------------------------------------------------------------

    def _calls_today(self, today: Mapping[str, tuple[Period, tuple[dt.datetime, dt.datetime]]]) -> list[CallFact]:
        if not today:
            return []
        since = min(b[0] for _, b in today.values())
        until = max(b[1] for _, b in today.values())
        records = self.records.records(today, since, until)
        return [c for c in records.calls if c.practice in today
                and today[c.practice][1][0] <= c.arrived_at < today[c.practice][1][1]]

    def _practice(self, dialplan: Dialplan, refs: list[QueueRef], live: LiveView, team: Mapping[str, Mapping],
                  calls: list[CallFact], period: Period, now: dt.datetime) -> dict:
        state = calendar.state_at(dialplan.calendar, now)
        route, _ = route_for(dialplan, state)
        mine = [c for c in calls if c.practice == dialplan.practice]
        waiting = [w for w in live.waiting if w.practice == dialplan.practice]
        covering = _union(live.covering.get((r.practice, r.queue), ()) for r in refs)
        people = _people(covering, team)
        open_now = route == "open"
        return {"id": dialplan.practice, "name": dialplan.name, "timezone": dialplan.calendar.timezone,
                "day": period.start.isoformat(), "status": state.status, "route": route, "open_now": open_now,
                "alarm": open_now and bool(refs) and people["logged_in"] == 0,
                **_waiting(waiting), "today": self._today(mine, dialplan.kpis), "secretaries": people,
                "queues": [{"id": r.queue, "label": r.label, "line": r.line,
                            **_waiting([w for w in waiting if w.queue == r.queue]),
                            "today": self._today([c for c in mine if c.queue == r.queue], dialplan.kpis),
                            "secretaries": _people(live.covering.get((r.practice, r.queue), ()), team)}
                           for r in refs]}

    def _lines(self, refs: list[QueueRef], plans: Mapping[str, Dialplan], live: LiveView,
               team: Mapping[str, Mapping], calls: list[CallFact]) -> list[dict]:
        out = []
        for line in sorted({r.line for r in refs if r.line}):
            members = [r for r in refs if r.line == line]
            keys = {(r.practice, r.queue) for r in members}
            covering = _union(live.covering.get(k, ()) for k in sorted(keys))
            out.append({"id": line, "name": line.removeprefix("line:"),
                        "practices": sorted({r.practice for r in members}),
                        "queues": [{"practice": r.practice, "queue": r.queue, "label": r.label,
                                    "practice_name": plans[r.practice].name} for r in members],
                        **_waiting([w for w in live.waiting if w.line == line]),
                        "today": self._today([c for c in calls if (c.practice, c.queue) in keys],
                                             _line_params(plans[r.practice].kpis for r in members)),
                        "secretaries": _people(covering, team)})
        return out

    def _today(self, calls: list[CallFact], params: KpiParams) -> dict:
        return _figures(call_figures(calls, params))


def _line_params(of_practices: Iterable[KpiParams]) -> KpiParams:
    """A shared line's parameters: its practices' when they agree, else the defaults."""
    distinct = set(of_practices)
    return distinct.pop() if len(distinct) == 1 else KpiParams()


def _today(dialplan: Dialplan, now: dt.datetime) -> tuple[Period, tuple[dt.datetime, dt.datetime]]:
    zone = ZoneInfo(dialplan.calendar.timezone)
    period = Period.today(now, zone)
    return period, period.bounds(zone)


def _figures(f: CallFigures) -> dict:
    sl = f.service_level
    return {"received": f.received, "for_secretary": f.for_secretary, "answered": f.answered,
            "abandoned": f.abandoned, "short_abandons": f.short_abandons, "overflowed": f.overflowed,
            "callbacks": f.callbacks, "in_progress": f.in_progress,
            "answer_time_p50_s": None if f.answer_time.p50 is None else round(f.answer_time.p50, 1),
            "service_level": {"numerator": sl.numerator, "denominator": sl.denominator, "rate": sl.value,
                              "target": f.params.sl_target, "threshold_s": f.params.sl_threshold_s},
            "missed": f.missed.to_json()}


def _waiting(entries: Sequence[WaitingNow]) -> dict:
    calls = [w for w in entries if not w.callback]
    return {"waiting": len(calls), "longest_wait_s": round(max((w.waited_s for w in calls), default=0.0), 1),
            "callbacks_waiting": len(entries) - len(calls)}


def _union(groups: Iterable[Sequence[str]]) -> tuple[str, ...]:
    out: list[str] = []
    for group in groups:
        out += [g for g in group if g not in out]
    return tuple(out)


def _people(ids: Sequence[str], team: Mapping[str, Mapping]) -> dict:
    states = [team[i]["state"] for i in ids if i in team]
    return {"covering": list(ids), "logged_in": sum(1 for s in states if s != OFFLINE),
            "available": sum(1 for s in states if s == "available")}


def _member(view: Mapping[str, Any], names: Mapping[str, str]) -> dict:
    username = view.get("username")
    return {"id": view["id"], "username": username,
            "display_name": names.get(username) if username else None,
            "phone": view.get("phone"), "state": view["state"], "paused": view.get("paused"),
            "since": view.get("since"), "logged_in": view.get("logged_in"), "registered": view.get("registered"),
            "calls_today": view.get("calls_today", 0), "missed_in_a_row": view.get("missed_in_a_row", 0)}


def _chain(view: EscalationView, dialplan: Dialplan | None) -> dict:
    names = {p.id: p.name for p in dialplan.practitioners.values()} if dialplan else {}
    tier = dialplan.escalation.get(view.tier) if dialplan else None
    out = view.to_json(with_caller=False)
    out["practice_name"] = dialplan.name if dialplan else view.practice
    out["tier_steps"] = len(tier.steps) if tier else None
    out["needs_attention"] = view.outcome == "exhausted" and view.taken_at is None and view.acknowledged_at is None
    for step in out["steps"]:
        step["practitioner_name"] = names.get(step["practitioner"], step["practitioner"])
    out["declined_by_names"] = [names.get(p, p) for p in view.declined_by]
    out["acknowledged_by_name"] = names.get(view.acknowledged_by, view.acknowledged_by)
    return out


def wallboard_routes(api: WallboardApi | None) -> list[Route]:
    """The route answers 503 when the server runs no call controller."""
    h = guarded(api, "no call controller runs on this server")
    return [Route("GET", "/api/wallboard", h("board"), (("team", "read"),))]
