"""A practice's activity report: GET /api/reports/practices/{practice}?from=&to=&format=.

The same report as `callrouter report` and the weekly e-mail (callrouter.reports): the figures of
the practice's local days `from` to `to`, both included (default: the last full ISO week), as JSON
(calls:read) or as a file, CSV, HTML or PDF (calls:read and exports:run). A practice the user does
not cover is refused (403). A file is an export: traced in the audit trail ("reports.export")
before it leaves; a refusal changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol
from zoneinfo import ZoneInfo

from callrouter.auth.permissions import allowed
from callrouter.domain.kpis import KpiRecords
from callrouter.domain.model import Dialplan
from callrouter.reports.content import build_report, period_of
from callrouter.reports.render import FILE_FORMATS, render
from callrouter.web.http import ApiError, HttpResponse, one_of, parse_query
from callrouter.web.ports import AuditTrail
from callrouter.web.router import Context, Route, check_practice, guarded

API_FORMATS = ("json", "csv", "pdf", "html")


def iso_date(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"expected a date such as 2026-03-23, got {raw!r}") from None


REPORT_QUERY = {"from": iso_date, "to": iso_date, "format": one_of(*API_FORMATS)}


class KpiSource(Protocol):
    """callrouter.store.kpi_queries.KpiQueries."""

    def records(self, practices: Iterable[str], since: dt.datetime, until: dt.datetime) -> KpiRecords: ...


@dataclass(frozen=True)
class ReportsApi:
    audit: AuditTrail
    records: KpiSource
    dialplan_for: Callable[[str], Dialplan | None]

    def practice_report(self, ctx: Context):
        q = parse_query(ctx.request, REPORT_QUERY)
        practice, fmt = ctx.params["practice"], q.get("format", "json")
        check_practice(ctx, practice)
        if fmt in FILE_FORMATS:
            ok, reason = allowed(ctx.user.role, "exports", "run", ctx.user.attrs)
            if not ok:
                raise ApiError(403, "forbidden", f"exports:run refused: {reason} (the {fmt} report is an export; "
                                                 f"format=json needs calls:read only)", reason=reason)
        dialplan = self.dialplan_for(practice)
        if dialplan is None:
            raise ApiError(404, "not_found", f"practice {practice} has no dialplan loaded")
        zone = ZoneInfo(dialplan.calendar.timezone)
        try:
            period = period_of(q.get("from"), q.get("to"), ctx.now, zone)
        except ValueError as exc:
            raise ApiError(400, "invalid_query", str(exc)) from None
        since, until = period.bounds(zone)
        report = build_report(practice, dialplan.name, zone, period, self.records.records([practice], since, until),
                              ctx.now, dialplan.kpis)
        out = render(report, fmt)
        if fmt not in FILE_FORMATS:
            return HttpResponse(200, out.body, out.content_type)
        self.audit.record(ctx.actor, "reports.export", f"practice:{practice}", ctx.now,
                          details={"format": fmt, "period": period.to_json(), "bytes": len(out.body)})
        return HttpResponse(200, out.body, out.content_type,
                            {"Content-Disposition": f'attachment; filename="{out.filename}"'})


def report_routes(api: ReportsApi | None) -> list[Route]:
    """Served even without the call records' store (then 503), so the route table stays whole."""
    h = guarded(api, "reports are not available on this server")
    return [Route("GET", "/api/reports/practices/{practice}", h("practice_report"), (("calls", "read"),),
                  query=REPORT_QUERY)]
