"""The report as plain text (a terminal, the body of the weekly e-mail), CSV (a spreadsheet, with
semicolons and a decimal comma as French spreadsheets expect) and JSON (programs)."""

from __future__ import annotations

import csv
import io
import json

from callrouter.reports import sections, words
from callrouter.reports.content import Report

CSV_COLUMNS = ("section", "indicateur", "valeur", "numérateur", "dénominateur", "clé")


def render_text(report: Report) -> str:
    width = 64
    lines = [sections.title(report), sections.subtitle(report), ""]
    for head in sections.headlines(report):
        lines.append(f"{head.label} : {head.value} ({head.detail})")
    for section in sections.sections(report):
        lines += ["", section.title, "-" * len(section.title)]
        for row in section.rows:
            lines.append(f"{row.label} {'.' * max(2, width - len(row.label) - len(row.value))} {row.value}")
    unacknowledged = sections.unacknowledged_lines(report)
    if unacknowledged:
        lines += ["", "Chaînes restées sans accusé de réception :"] + [f"  - {line}" for line in unacknowledged]
    lines += ["", "Niveau de service par jour :"]
    for d in report.days:
        lines.append(f"  {words.short_day(d.period.start)} : {words.rate(d.calls.service_level)}")
    lines += ["", sections.colophon(report)]
    return "\n".join(lines) + "\n"


def render_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for section in sections.sections(report):
        for row in section.rows:
            writer.writerow((section.title, row.label, row.value.replace(words.NBSP, " ").replace(words.NNBSP, " "),
                             _figure(row.numerator), "" if row.denominator is None else row.denominator, row.key))
    for d in report.days:
        sl = d.calls.service_level
        writer.writerow(("Niveau de service par jour", d.period.start.isoformat(), words.rate(sl).replace(words.NNBSP, " "),
                         sl.numerator, sl.denominator, f"service_level_{d.period.start.isoformat()}"))
    for line in sections.unacknowledged_lines(report):
        writer.writerow(("Chaînes sans accusé de réception", line.replace(words.NBSP, " "), "", "", "", "unacknowledged"))
    return out.getvalue()


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2) + "\n"


def _figure(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3f}".rstrip("0").replace(".", ",")
    return str(int(value)) if isinstance(value, float) else str(value)
