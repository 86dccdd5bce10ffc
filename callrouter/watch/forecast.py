"""When a practice's forwarding watch calls over a forecast's days, for `callrouter calendar`: the
same plan the daemon runs (callrouter.domain.watch), with the settings' ceiling and kill switch, and
what an administrator should be told about it. Pure: the settings are given, time is an argument."""

from __future__ import annotations

import datetime as dt

from callrouter.domain import calendar, watch
from callrouter.domain.model import Dialplan
from callrouter.watch.settings import WatchSettings

FORWARDING = {"always": "always forwarded", "closed": "forwarded while closed", "no_answer": "forwarded on no answer"}


def forecast(dialplan: Dialplan, start: dt.datetime, end: dt.datetime, settings: WatchSettings | None,
             source: str) -> tuple[list[watch.PlannedWatch], list[str]]:
    """The watch calls planned in [start, end), and the warnings (`settings` None: not readable)."""
    spec = dialplan.watch
    if spec is None:
        return [], []
    cap = min(spec.max_calls_per_day, settings.max_calls_per_day) if settings else spec.max_calls_per_day
    planned = watch.plan(dialplan, start, end, cap)
    notes = []
    if settings is not None and not settings.enabled:
        notes.append(f"the forwarding watch is disabled in {source} (watch.enabled is false): none of these "
                     f"{len(planned)} watch call(s) goes out")
    if not planned:
        notes.append(f"the watch section plans no call in these days: with the line {FORWARDING[spec.forwarding]}, "
                     f"its windows never fall while the practice is closed for a whole call and its retry")
    return planned, notes


def describe(w: watch.PlannedWatch, tz: str) -> str:
    zone = calendar.zone(tz)
    at, start, end = (t.astimezone(zone) for t in (w.at, w.window_start, w.window_end))
    back = f", back on {w.number.returns_on}" if w.number.returns_on != w.number.call else ""
    return (f"{at.strftime('%a %Y-%m-%d %H:%M')}  calls {w.number.call}{back} "
            f"(window {start.strftime('%H:%M')}-{end.strftime('%H:%M')})")


def to_dict(w: watch.PlannedWatch, tz: str) -> dict:
    zone = calendar.zone(tz)
    return {"number": w.number.call, "returns_on": w.number.returns_on, "at": w.at.astimezone(zone).isoformat(),
            "window_start": w.window_start.astimezone(zone).isoformat(),
            "window_end": w.window_end.astimezone(zone).isoformat()}
