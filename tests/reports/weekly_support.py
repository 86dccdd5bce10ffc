"""Building the weekly reports' service as callrouter.app does, on a given database, SMTP server
and clock (shared by the in-process tests and the child process the SIGKILL test kills)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from twisted.internet import reactor, task, threads

from callrouter.dialplan.loader import load_paths
from callrouter.escalation.settings import EscalationSettings
from callrouter.reports.mailer import SmtpReportMailer
from callrouter.reports.render import render
from callrouter.reports.weekly import WeeklyReports
from callrouter.store.kpi_queries import KpiQueries
from callrouter.store.reports import ReportOutbox
from tests.reports import seed as S

SENDER = "rapports@telesecretariat.example"
DUE = S.local(30, 7, 0)  # Monday 30 March 2026, 07:00 in Paris (UTC+2 since Sunday): week 13 is due


def dialplans(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{S.PRACTICE}.yaml").write_text(S.DIALPLAN, encoding="utf-8")
    result = load_paths([folder])
    assert not result.errors, result.errors
    return {d.practice: d for d in result.dialplans}


def smtp_settings(port: int, cafile, timeout_s: float = 10.0) -> EscalationSettings:
    return EscalationSettings(smtp_host="127.0.0.1", smtp_port=port, smtp_cafile=cafile, smtp_from=SENDER,
                              http_timeout_seconds=timeout_s)


def weekly_service(db, plans: dict, settings: EscalationSettings, clock, node: str = "local") -> WeeklyReports:
    def run_blocking(f, *args):
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), f, *args)

    return WeeklyReports(lambda: plans, ReportOutbox(db, node), KpiQueries(db), SmtpReportMailer(settings),
                         lambda report: render(report, "pdf").body, run_blocking, clock)


def clock_at(when) -> task.Clock:
    clock = task.Clock()
    clock.advance(when.timestamp())
    return clock


def wait_until(condition, what: str, bound_s: float = 60.0) -> None:
    """Poll (blocking) `condition`, bounded: fails after `bound_s`, never asserts on the time taken."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")
