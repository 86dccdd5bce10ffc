"""The forwarding watch through the API (docs/forwarding-watch.md): what the wallboard shows of each
practice's forwarding, and what a supervisor does about it.

- GET /api/watch (dialplans:read): per practice with a watch (in the user's scope), each watched
  number's last verdict, the failures nobody acknowledged yet (red on the wallboard), the runs
  under way and the next watches planned; `enabled` is the settings' kill switch.
- GET /api/practices/{practice}/watch (dialplans:read): its runs, newest first (`limit`, 50; `days`:
  only those started in the last days), with their attempts and the alerts they sent, and the
  practice's time zone (the wallboard's history shows local times).
- POST /api/practices/{practice}/watch/run (team:write): a watch started now ("tester le renvoi"),
  under the same rules as the planned ones (budget, one call per number, not while the practice is
  open when it forwards only when closed); a refusal is a 409 with its French message.
- POST /api/watch/{run_id}/acknowledge (team:write): a failure taken in hand, off the wallboards
  (audited). The line stays failing (gauge, alert rule) until a watch passes.

A practice the user does not cover is "no such practice" (404), as one without a dialplan.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol

from callrouter.auth.permissions import practice_scope
from callrouter.domain import watch
from callrouter.domain.model import Dialplan
from callrouter.domain.watch_views import RunView, UnknownRun, WatchRefused
from callrouter.ports import Actor
from callrouter.web.http import ApiError, Field, int_between, parse_body, parse_query
from callrouter.web.router import Context, Route, check_visible, guarded

RUN_BODY = {"number": Field(str, required=False, max_length=32)}
HISTORY_QUERY = {"limit": int_between(1, 500), "days": int_between(1, 400)}
NEXT_COUNT = 3


class WatchReads(Protocol):
    """The watch in the store (callrouter.store.watch.WatchRepository)."""

    def get(self, run_id: int) -> RunView: ...
    def runs(self, practices: Iterable[str] | None = None, limit: int = 50,
             since: dt.datetime | None = None) -> list[RunView]: ...
    def latest(self, practices: Iterable[str] | None = None) -> list[RunView]: ...
    def alarms(self, practices: Iterable[str] | None = None) -> list[RunView]: ...
    def acknowledge(self, actor: Actor, run_id: int, now: dt.datetime) -> RunView: ...


@dataclass(frozen=True)
class WatchApi:
    store: WatchReads
    dialplans: Callable[[], Mapping[str, Dialplan]]  # the dialplans in force (the registry's)
    run_now: Callable[[str, str | None, str], RunView]  # blocking: start a watch on the reactor thread
    under_way: Callable[[], list[RunView]]  # blocking: the runs under way on this node
    cap: Callable[[Dialplan], int]  # the practice's calls a day (dialplan within the settings)
    enabled: bool = False

    def overview(self, ctx: Context):
        scope = practice_scope(ctx.user.role, ctx.user.attrs)
        watched = {p: d for p, d in sorted(self.dialplans().items())
                   if d.watch is not None and (scope is None or p in scope)}
        latest = {(r.practice, r.number): r for r in self.store.latest(watched)}
        alarms = self.store.alarms(watched)
        running = [r for r in self.under_way() if r.practice in watched]
        return {"enabled": self.enabled, "practices": [
            {"practice": p, "name": d.name, "forwarding": d.watch.forwarding, "timezone": d.calendar.timezone,
             "numbers": [_number(n, latest.get((p, n.call))) for n in d.watch.numbers],
             "alarms": [run_json(r) for r in alarms if r.practice == p],
             "under_way": [run_json(r) for r in running if r.practice == p],
             "next": [{"number": w.number.call, "at": w.at.isoformat(timespec="seconds")}
                      for w in (watch.next_watches(d, ctx.now, self.cap(d), NEXT_COUNT) if self.enabled else [])]}
            for p, d in watched.items()]}

    def history(self, ctx: Context):
        practice = self._practice(ctx)
        q = parse_query(ctx.request, HISTORY_QUERY)
        since = ctx.now - dt.timedelta(days=q["days"]) if "days" in q else None
        dialplan = self.dialplans()[practice]
        return {"practice": practice, "name": dialplan.name, "timezone": dialplan.calendar.timezone,
                "runs": [run_json(r) for r in self.store.runs([practice], q.get("limit", 50), since)]}

    def start(self, ctx: Context):
        practice = self._practice(ctx)
        body = parse_body(ctx.request, RUN_BODY)
        try:
            run = self.run_now(practice, body.get("number"), ctx.actor.name)
        except WatchRefused as exc:
            raise ApiError(409, "watch_refused", str(exc)) from None
        if run is None:
            raise ApiError(409, "watch_refused", "un test de ce numéro vient d'être lancé")
        return run_json(run)

    def acknowledge(self, ctx: Context):
        try:
            run = self.store.get(ctx.params["run_id"])
            check_visible(ctx, run.practice, "watch run")
            return run_json(self.store.acknowledge(ctx.actor, run.id, ctx.now))
        except UnknownRun:
            raise ApiError(404, "not_found", "no such watch run") from None
        except WatchRefused as exc:
            raise ApiError(409, "watch_refused", str(exc)) from None

    def _practice(self, ctx: Context) -> str:
        practice = ctx.params["practice"]
        scope = practice_scope(ctx.user.role, ctx.user.attrs)
        dialplan = self.dialplans().get(practice) if scope is None or practice in scope else None
        if dialplan is None:
            raise ApiError(404, "not_found", "no such practice")
        return practice


def _number(number, last: RunView | None) -> dict[str, Any]:
    return {"number": number.call, "returns_on": number.returns_on, "site": number.site,
            "last": run_json(last) if last else None, "failing": bool(last and last.state == "failed")}


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def run_json(r: RunView) -> dict[str, Any]:
    return {
        "id": r.id, "practice": r.practice, "number": r.number, "returns_on": r.returns_on, "trigger": r.trigger,
        "state": r.state, "outcome": r.outcome, "outcome_label": watch.OUTCOME_LABELS.get(r.outcome or ""),
        "rtt_ms": r.rtt_ms, "alarm": r.alarm, "planned_at": _iso(r.planned_at), "started_at": _iso(r.started_at),
        "ended_at": _iso(r.ended_at), "acknowledged_at": _iso(r.acknowledged_at), "acknowledged_by": r.acknowledged_by,
        "attempts": [{"n": a.n, "started_at": _iso(a.started_at), "ended_at": _iso(a.ended_at), "outcome": a.outcome,
                      "outcome_label": watch.OUTCOME_LABELS.get(a.outcome or ""), "sip_code": a.sip_code,
                      "rang": a.rang, "rtt_ms": a.rtt_ms, "name_kept": a.name_kept} for a in r.attempts],
        "alerts": [{"channel": a.channel, "state": a.state, "sent_at": _iso(a.sent_at)} for a in r.alerts],
    }


def watch_routes(api: WatchApi | None) -> list[Route]:
    """Served even without the watch service (then 503), so the route table stays whole."""
    h = guarded(api, "the forwarding watch does not run on this server")
    read, write = ("dialplans", "read"), ("team", "write")
    return [
        Route("GET", "/api/watch", h("overview"), (read,)),
        Route("GET", "/api/practices/{practice}/watch", h("history"), (read,), query=HISTORY_QUERY),
        Route("POST", "/api/practices/{practice}/watch/run", h("start"), (write,), body=RUN_BODY, status=202),
        Route("POST", "/api/watch/{run_id:int}/acknowledge", h("acknowledge"), (write,)),
    ]
