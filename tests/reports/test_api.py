"""GET /api/reports/practices/{practice} over real HTTP, on SQLite and PostgreSQL: the figures of
the seeded week as JSON for anyone with calls:read on the practice; a file (PDF, CSV, HTML) only
with exports:run too, traced in the audit trail before it leaves; refusals trace nothing."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from callrouter.auth.totp import code_at
from callrouter.store.audit import Actor, AuditLog
from callrouter.store.kpi_queries import KpiQueries
from callrouter.store.users import UserRepository
from callrouter.web.reports import ReportsApi, report_routes
from callrouter.web.router import Router
from callrouter.web.site import build_site
from tests.reports import seed as S
from tests.reports.weekly_support import dialplans

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from web_support import Client  # noqa: E402

PASSWORD = "a long enough password"
PEOPLE = {"super": ("supervisor", ()), "sec": ("secretary", (S.PRACTICE,)), "other": ("secretary", ("cab-b",)),
          "doc": ("practitioner", (S.PRACTICE,))}
WEEK = f"/api/reports/practices/{S.PRACTICE}?from=2026-03-23&to=2026-03-29"


@pytest.fixture
def served(db, tmp_path):
    S.seed(db)
    users, audit, now = UserRepository(db), AuditLog(db), dt.datetime.now(dt.timezone.utc)
    tokens = {}
    for name, (role, practices) in PEOPLE.items():
        new = users.add(Actor("root", "cli"), name, name.title(), role, PASSWORD, now, practices=practices)
        tokens[name], _ = users.login(name, PASSWORD, code_at(new.totp_secret, now), now, "127.0.0.1",
                                      dt.timedelta(hours=1))
    plans = dialplans(tmp_path / "dialplans")
    api = ReportsApi(audit, KpiQueries(db), plans.get)
    site = build_site(Router(report_routes(api), users.authenticate), reactor, reactor.getThreadPool(), reactor,
                      16 * 1024)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    try:
        yield Client(port.getHost().port), tokens, audit
    finally:
        pytest_twisted.blockon(port.stopListening())


def exports(audit):
    return [(e, json.loads(e.details)) for e in audit.query(action="reports.export", limit=100)]


@pytest_twisted.inlineCallbacks
def test_the_json_report_gives_the_weeks_figures_to_whoever_reads_the_practices_calls(served):
    client, tokens, audit = served
    for who in ("super", "sec", "doc"):
        r = yield client.call("GET", WEEK, token=tokens[who])
        assert r.status == 200, (who, r.body)
        assert r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert body["calls"]["service_level"]["numerator"] == 4 and body["calls"]["missed"]["denominator"] == 8
        assert body["period"] == {"start": "2026-03-23", "end": "2026-03-30"} and body["timezone"] == "Europe/Paris"
    assert exports(audit) == []  # figures read, no file: not an export


@pytest_twisted.inlineCallbacks
def test_a_pdf_is_an_export_for_those_allowed_to_run_exports_and_is_audited(served):
    client, tokens, audit = served
    r = yield client.call("GET", WEEK + "&format=pdf", token=tokens["super"])
    assert r.status == 200, r.body
    assert r.headers["content-type"] == "application/pdf" and r.body.startswith(b"%PDF-")
    assert r.headers["content-disposition"] == 'attachment; filename="rapport-cabinet-exemple-2026-W13.pdf"'
    [(entry, details)] = exports(audit)
    assert (entry.actor, entry.target) == ("super", f"practice:{S.PRACTICE}")
    assert details["format"] == "pdf" and details["period"] == {"start": "2026-03-23", "end": "2026-03-30"}
    for fmt, kind in (("csv", "text/csv"), ("html", "text/html")):
        r = yield client.call("GET", WEEK + f"&format={fmt}", token=tokens["super"])
        assert r.status == 200 and r.headers["content-type"].startswith(kind)
    assert sorted(d["format"] for _, d in exports(audit)) == ["csv", "html", "pdf"]


@pytest_twisted.inlineCallbacks
def test_refusals_say_why_and_trace_no_export(served):
    client, tokens, audit = served
    r = yield client.call("GET", WEEK + "&format=pdf", token=tokens["sec"])  # a secretary runs no export
    assert r.status == 403 and "exports:run refused" in r.json()["message"]
    r = yield client.call("GET", WEEK, token=tokens["other"])  # not her practice
    assert r.status == 403 and r.json()["message"] == f"practice {S.PRACTICE} is not one of yours"
    r = yield client.call("GET", WEEK)
    assert r.status == 401
    r = yield client.call("GET", "/api/reports/practices/nowhere", token=tokens["super"])
    assert r.status == 404
    for query, words in (("?from=2026-03-29&to=2026-03-23", "before the first"), ("?from=23/03/2026", "a date such as"),
                         ("?format=docx", "must be one of"), ("?from=2025-01-01&to=2026-03-01", "at most 366")):
        r = yield client.call("GET", f"/api/reports/practices/{S.PRACTICE}{query}", token=tokens["super"])
        assert r.status == 400 and words in r.json()["message"], (query, r.body)
    assert exports(audit) == []


@pytest_twisted.inlineCallbacks
def test_without_dates_the_report_is_the_last_full_week(served):
    client, tokens, _ = served
    r = yield client.call("GET", f"/api/reports/practices/{S.PRACTICE}", token=tokens["super"])
    assert r.status == 200
    today = dt.datetime.now(S.PARIS).date()
    monday = today - dt.timedelta(days=today.weekday() + 7)
    assert r.json()["period"] == {"start": monday.isoformat(), "end": (monday + dt.timedelta(days=7)).isoformat()}
