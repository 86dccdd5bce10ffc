"""The forecast: which route applies when over the coming days, and what is wrong with it.

Built from the same `calendar.state_at` and `routing.route_for` as live decisions, so the forecast
and the daemon cannot disagree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from callrouter.domain import calendar, oncall
from callrouter.domain.decision import action_to_dict, describe_action
from callrouter.domain.model import (
    Action,
    AnnounceAction,
    CallbackOfferAction,
    Dialplan,
    EscalateAction,
    ForwardAction,
    IvrAction,
    Period,
    QueueAction,
    VoicemailAction,
)
from callrouter.domain.routing import route_for

UTC = dt.timezone.utc


@dataclass(frozen=True)
class Segment:
    """A period with one route and, when the practice has a rota, one answer to who is on call."""

    start: dt.datetime  # aware, UTC
    end: dt.datetime
    status: str
    rule: str
    detail: str
    route: str
    action: Action
    on_call: oncall.OnCall | None = None  # None: the practice has no on-call rota


@dataclass(frozen=True)
class Warning:
    kind: str  # gap | no_on_call | holiday_no_on_call | closure_without_message | rota_ends | holiday
    start: dt.datetime | None
    end: dt.datetime | None
    message: str
    severity: str = "warning"  # warning | info


def timeline(dialplan: Dialplan, start: dt.datetime, end: dt.datetime, site: str | None = None) -> list[Segment]:
    """Segments covering [start, end) exactly, each with the route that applies all through it and
    who is on call (the rota is read in the practice's time zone, as escalation reads it)."""
    spec = dialplan.calendar_for(site)
    tz = spec.timezone
    rota = dialplan.on_call
    local_start = calendar.local_time(tz, start).date()
    local_end = calendar.local_time(tz, end).date()
    candidates = calendar.boundary_candidates(spec, local_start, local_end)
    if rota is not None:
        candidates = sorted({*candidates, *oncall.rota_candidates(rota, local_start, local_end)})
    instants = [t for t in calendar.to_instants(tz, candidates) if start < t < end]
    points = [start.astimezone(UTC), *instants, end.astimezone(UTC)]
    segments: list[Segment] = []
    for a, b in zip(points, points[1:]):
        state = calendar.state_at(spec, a)
        route, action = route_for(dialplan, state)
        who = oncall.on_call(rota, calendar.local_time(dialplan.calendar.timezone, a)) if rota is not None else None
        last = segments[-1] if segments else None
        if last and _same(last, state, route, action, who):
            segments[-1] = Segment(last.start, b, last.status, last.rule, last.detail, last.route, last.action,
                                   last.on_call)
        else:
            segments.append(Segment(a, b, state.status, state.rule, state.detail, route, action, who))
    return segments


def _same(last: Segment, state: calendar.CalendarState, route: str, action: Action,
          who: oncall.OnCall | None) -> bool:
    """Whether a period continues the last segment: same route, same person on call by the same rule."""
    return last.on_call == who and (last.status, last.detail, last.route, last.action) == (state.status, state.detail, route, action)


@dataclass(frozen=True)
class Reach:
    """What a route can lead a caller to, following its IVR menus."""

    queues: frozenset[str]
    messages: frozenset[str]
    tiers: frozenset[str]
    other: frozenset[str]  # voicemail, forward, callback

    @property
    def reaches_someone_or_something(self) -> bool:
        return bool(self.queues or self.messages or self.tiers or self.other)


def reach(dialplan: Dialplan, action: Action | None) -> Reach:
    queues: set[str] = set()
    messages: set[str] = set()
    tiers: set[str] = set()
    other: set[str] = set()
    seen_menus: set[str] = set()

    def walk(a: Action | None) -> None:
        match a:
            case AnnounceAction(prompt=p, then=t):
                messages.add(p)
                walk(t)
            case QueueAction(queue=q):
                queues.add(q)
            case IvrAction(menu=m) if m not in seen_menus:
                seen_menus.add(m)
                menu = dialplan.ivr[m]
                for option in menu.options.values():
                    if option.tier:
                        tiers.add(option.tier)
                    walk(option.action)
                walk(menu.on_timeout)
            case EscalateAction(tier=t):
                tiers.add(t)
                spec = dialplan.escalation.get(t)
                if spec and spec.announce:
                    messages.add(spec.announce)
            case VoicemailAction():
                other.add("voicemail")
            case ForwardAction():
                other.add("forward")
            case CallbackOfferAction():
                other.add("callback")

    walk(action)
    return Reach(frozenset(queues), frozenset(messages), frozenset(tiers), frozenset(other))


def _uses_on_call(dialplan: Dialplan, tiers: frozenset[str]) -> bool:
    return any(step.target in ("on_call", "backup")
               for t in tiers if t in dialplan.escalation for step in dialplan.escalation[t].steps)


def warnings(dialplan: Dialplan, segments: list[Segment], start: dt.datetime, end: dt.datetime,
             site: str | None = None) -> list[Warning]:
    """Gaps and risks in [start, end): what an administrator should fix before it bites."""
    spec = dialplan.calendar_for(site)
    tz = calendar.zone(spec.timezone)
    out: list[Warning] = []
    no_one: list[tuple[dt.datetime, dt.datetime, set[str]]] = []  # merged while contiguous
    for seg in segments:
        r = reach(dialplan, seg.action)
        if not r.reaches_someone_or_something:
            out.append(Warning("gap", seg.start, seg.end,
                               f"route '{seg.route}' ({seg.detail}) reaches no queue, no on-call and plays no message"))
        elif r.tiers and _uses_on_call(dialplan, r.tiers) and dialplan.on_call is not None:
            window = Period(seg.start.astimezone(tz).replace(tzinfo=None), seg.end.astimezone(tz).replace(tzinfo=None))
            for hole in oncall.holes(dialplan.on_call, window):
                a = hole.start.replace(tzinfo=tz).astimezone(UTC)
                b = hole.end.replace(tzinfo=tz).astimezone(UTC)
                if no_one and no_one[-1][1] == a:
                    no_one[-1][2].add(seg.route)
                    no_one[-1] = (no_one[-1][0], b, no_one[-1][2])
                else:
                    no_one.append((a, b, {seg.route}))
    for a, b, routes in no_one:
        names = ", ".join(f"'{r}'" for r in sorted(routes))
        out.append(Warning("no_on_call", a, b,
                           f"nobody is on call, yet route{'s' if len(routes) > 1 else ''} {names} can escalate to the on-call practitioner"))
    seen_closures = set()
    for seg in segments:
        if seg.status == calendar.CLOSURE:
            state = calendar.state_at(spec, seg.start)
            closure = state.closure
            if closure is not None and closure not in seen_closures:
                seen_closures.add(closure)
                if closure.announce is None and closure.route is None:
                    out.append(Warning("closure_without_message", seg.start, seg.end,
                                       f"closure '{closure.reason}' has no message of its own: callers get the "
                                       f"generic '{seg.route}' route and are not told the practice is closed"))
    rota = dialplan.on_call
    if rota is not None and rota.until is not None:
        ends = dt.datetime.combine(rota.until + dt.timedelta(days=1), dt.time(), tzinfo=tz).astimezone(UTC)
        if ends <= end:
            when = "has ended" if ends <= start else "ends"
            out.append(Warning("rota_ends", ends, None,
                               f"the on-call rota {when} on {rota.until.isoformat()} (last day): write the next period"))
    for day, name in holidays_between(dialplan, start, end, site):
        local_noon = dt.datetime.combine(day, dt.time(12), tzinfo=tz)
        route, action = route_for(dialplan, calendar.state_at(spec, local_noon))
        out.append(Warning("holiday", local_noon.astimezone(UTC), None,
                           f"public holiday {day.isoformat()} ({name}): route '{route}', {describe_action(action)}",
                           severity="info"))
    out += _holidays_without_on_call(dialplan, start, end)
    return sorted(out, key=lambda w: (w.start or start, w.kind))


def _holidays_without_on_call(dialplan: Dialplan, start: dt.datetime, end: dt.datetime) -> list[Warning]:
    """Hours inside [start, end) that the rota's holiday rule decides (the practice's holidays and
    their nights) with nobody on call."""
    rota = dialplan.on_call
    if rota is None:
        return []
    tz = calendar.zone(dialplan.calendar.timezone)
    lo, hi = calendar.local_time(tz.key, start), calendar.local_time(tz.key, end)
    out = []
    for day, name, span in oncall.holiday_spans(rota, lo.date() - oncall.DAY, hi.date()):
        window = Period(max(lo, span.start), min(hi, span.end))
        holes: list[Period] = []  # once the rota has ended, `rota_ends` says so: not repeated here
        for seg in oncall.who_when(rota, window) if window.start < window.end else ():
            if seg.who is None and seg.rule != oncall.ENDED:
                if holes and holes[-1].end == seg.period.start:
                    holes[-1] = Period(holes[-1].start, seg.period.end)
                else:
                    holes.append(seg.period)
        for hole in holes:
            out.append(Warning(
                "holiday_no_on_call", hole.start.replace(tzinfo=tz).astimezone(UTC),
                hole.end.replace(tzinfo=tz).astimezone(UTC),
                f"public holiday {day.isoformat()} ({name}): nobody is on call "
                f"(on_call.holidays: {oncall.describe_cover(rota.holidays)})"))
    return out


def holidays_between(dialplan: Dialplan, start: dt.datetime, end: dt.datetime, site: str | None = None):
    spec = dialplan.calendar_for(site)
    a = calendar.local_time(spec.timezone, start).date()
    b = calendar.local_time(spec.timezone, end).date()
    for year in range(a.year, b.year + 1):
        for day, name in sorted(calendar.holidays_for(spec.country, spec.subdivision, year).items()):
            if a <= day <= b:
                yield day, name


def segment_to_dict(seg: Segment, tz: str) -> dict:
    zone = calendar.zone(tz)
    return {
        "start": seg.start.astimezone(zone).isoformat(),
        "end": seg.end.astimezone(zone).isoformat(),
        "status": seg.status,
        "rule": seg.rule,
        "detail": seg.detail,
        "route": seg.route,
        "action": action_to_dict(seg.action),
        "on_call": on_call_to_dict(seg.on_call),
    }


def on_call_to_dict(who: oncall.OnCall | None) -> dict | None:
    """Who is on call and by which rule; None when the practice has no rota."""
    if who is None:
        return None
    return {"who": who.who, "rule": who.rule, "detail": who.detail}


def warning_to_dict(w: Warning, tz: str) -> dict:
    zone = calendar.zone(tz)
    return {
        "kind": w.kind,
        "severity": w.severity,
        "start": w.start.astimezone(zone).isoformat() if w.start else None,
        "end": w.end.astimezone(zone).isoformat() if w.end else None,
        "message": w.message,
    }
