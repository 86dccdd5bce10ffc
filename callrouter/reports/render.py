"""One report, five formats: `render(report, fmt)` gives the bytes, their media type and the file
name a download should take. matplotlib is imported only for the formats with pictures."""

from __future__ import annotations

from dataclasses import dataclass

from callrouter.reports.content import Report

FORMATS = ("text", "csv", "json", "html", "pdf")
FILE_FORMATS = ("csv", "html", "pdf")  # what the API treats as an export
TYPES = {"text": "text/plain; charset=utf-8", "csv": "text/csv; charset=utf-8",
         "json": "application/json", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}
SUFFIXES = {"text": "txt", "csv": "csv", "json": "json", "html": "html", "pdf": "pdf"}


@dataclass(frozen=True)
class Rendered:
    body: bytes
    content_type: str
    filename: str


def render(report: Report, fmt: str) -> Rendered:
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "pdf":
        from callrouter.reports.pdf import render_pdf

        body = render_pdf(report)
    elif fmt == "html":
        from callrouter.reports.html import render_html

        body = render_html(report).encode()
    else:
        from callrouter.reports import flat

        text = {"text": flat.render_text, "csv": flat.render_csv, "json": flat.render_json}[fmt](report)
        body = ("\ufeff" + text if fmt == "csv" else text).encode()  # a BOM: spreadsheets read UTF-8
    return Rendered(body, TYPES[fmt], filename(report, fmt))


def filename(report: Report, fmt: str) -> str:
    """rapport-cabinet-exemple-2026-W13.pdf for an ISO week, else ...-2026-03-01-2026-03-31.pdf."""
    p = report.period
    year, week, weekday = p.start.isocalendar()
    days = (p.end - p.start).days
    last = p.start.fromordinal(p.end.toordinal() - 1)
    span = f"{year}-W{week:02d}" if weekday == 1 and days == 7 else f"{p.start.isoformat()}-{last.isoformat()}"
    return f"rapport-{report.practice}-{span}.{SUFFIXES[fmt]}"
