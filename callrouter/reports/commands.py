"""CLI: `callrouter report --practice ID [--from DATE --to DATE] [--format ...] [--output FILE]`.

The report a practice reads (docs/reports.md), from the database and the dialplans of the
settings (`--config`). Days are the practice's local days, both dates included; without dates,
the last full ISO week. Text, CSV and JSON go to the standard output unless `--output` is given;
HTML and PDF go to `--output`, or to their default file name in the current directory. A file
written (CSV, HTML, PDF) is an export: traced in the audit trail.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from callrouter.config import ConfigError, add_config_argument, settings_for_cli
from callrouter.dialplan.loader import load_paths
from callrouter.domain.kpis import Period
from callrouter.ports import Actor
from callrouter.prompts import Catalogue
from callrouter.reports.content import build_report, period_of
from callrouter.reports.render import FILE_FORMATS, FORMATS, render
from callrouter.store.audit import AuditLog
from callrouter.store.db import Database
from callrouter.store.kpi_queries import KpiQueries


def register(sub) -> None:
    p = sub.add_parser("report", help="a practice's activity report (figures and charts, in French)")
    p.add_argument("--practice", required=True, help="the practice's id (its dialplan's `practice`)")
    p.add_argument("--from", dest="start", type=_date, help="first local day, e.g. 2026-03-23 (default: last week's Monday)")
    p.add_argument("--to", dest="end", type=_date, help="last local day, included (default: the Sunday after --from's week)")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--output", type=Path, help="file to write (default: standard output; for html and pdf a file "
                                               "named after the practice and the period)")
    add_config_argument(p)
    p.set_defaults(func=cmd_report)


def _date(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a date such as 2026-03-23") from None


def cmd_report(args) -> int:
    try:
        settings = settings_for_cli(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    loaded = load_paths([settings.dialplans], Catalogue.load(settings.prompts))
    plan = next((d for d in loaded.dialplans if d.practice == args.practice), None)
    if plan is None:
        known = ", ".join(sorted(d.practice for d in loaded.dialplans)) or "none"
        print(f"error: no valid dialplan for practice {args.practice!r} in {settings.dialplans} (practices: {known})",
              file=sys.stderr)
        return 1
    zone, now = ZoneInfo(plan.calendar.timezone), dt.datetime.now(dt.timezone.utc)
    try:
        period = period_of(args.start, args.end, now, zone)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    db = Database.from_url(settings.database_url)
    try:
        problem = db.schema_problem()
        if problem is not None:
            print(f"error: {problem}", file=sys.stderr)
            return 1
        since, until = period.bounds(zone)
        report = build_report(plan.practice, plan.name, zone, period,
                              KpiQueries(db).records([plan.practice], since, until), now, plan.kpis)
        out = render(report, args.format)
        target = args.output or (Path(out.filename) if args.format in ("html", "pdf") else None)
        if args.format in FILE_FORMATS:
            AuditLog(db).record(_actor(), "reports.export", f"practice:{plan.practice}", now,
                                details={"format": args.format, "period": period.to_json()})
    finally:
        db.dispose()
    if target is None:
        sys.stdout.buffer.write(out.body)
        sys.stdout.flush()
    else:
        target.write_bytes(out.body)
        print(f"{target}: {args.format.upper()} report of {plan.practice}, {period.start} to "
              f"{period.end - dt.timedelta(days=1)}", file=sys.stderr)
    return 0


def _actor() -> Actor:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = str(os.getuid())
    return Actor(f"cli:{who}"[:64], "cli")
