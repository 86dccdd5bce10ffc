"""The report as one self-contained HTML page: its style in the page, each chart an inline SVG
(glyphs drawn as paths: no font to fetch), no script, no link to anything outside the file. Every
text is escaped; the SVG comes from matplotlib, never from the records."""

from __future__ import annotations

import html

from callrouter.reports import charts, sections, words
from callrouter.reports.content import Report

STYLE = """
body{font-family:"DejaVu Sans",Verdana,sans-serif;color:#1d2b36;margin:0;background:#fff;font-size:14px}
header{background:#1f5f8b;color:#fff;padding:24px 40px}
header p.kind{margin:0;font-size:12px;font-weight:bold;letter-spacing:.05em;color:#cfe0ee}
header h1{margin:6px 0;font-size:28px}
header p{margin:0;font-size:15px}
main{max-width:1000px;margin:0 auto;padding:24px 40px}
.tiles{display:grid;grid-template-columns:repeat(4,1fr);gap:14px;margin-bottom:26px}
.tile{background:#f4efe6;border-radius:8px;padding:14px 16px}
.tile .label{font-size:12px;font-weight:bold;color:#5b6b78}
.tile .value{font-size:30px;font-weight:bold;margin:6px 0}
.tile .value.good{color:#2a9d8f}.tile .value.bad{color:#e07a3f}
.tile .detail{font-size:11px;color:#5b6b78}
.columns{display:grid;grid-template-columns:1fr 1fr;gap:0 36px}
h2{color:#1f5f8b;font-size:17px;border-bottom:2px solid #1f5f8b;padding-bottom:4px;margin:22px 0 4px}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #d9e0e6;padding:4px 2px;text-align:left}
td.v,th.v{text-align:right;white-space:nowrap}
tr.strong td{font-weight:bold}
th{font-size:12px;color:#5b6b78}
p.note{font-size:11px;color:#5b6b78;font-style:italic;margin:6px 0 0}
figure{margin:22px 0}figure svg{width:100%;height:auto}
footer{color:#5b6b78;font-size:11px;border-top:1px solid #d9e0e6;margin-top:28px;padding-top:8px}
@media print{header{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def render_html(report: Report) -> str:
    e = html.escape
    tiles = "".join(
        f'<div class="tile"><div class="label">{e(t.label)}</div>'
        f'<div class="value{"" if t.good is None else (" good" if t.good else " bad")}">{e(t.value)}</div>'
        f'<div class="detail">{e(t.detail)}</div></div>' for t in sections.headlines(report))
    calls, answer, callbacks, closed, _ = sections.sections(report)
    left = _section(calls) + _section(closed)
    right = _section(answer) + _section(callbacks)
    return (f'<!doctype html>\n<html lang="fr"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width"><title>{e(sections.title(report))}</title>'
            f'<style>{STYLE}</style></head><body>'
            f'<header><p class="kind">RAPPORT D\'ACTIVITÉ DU TÉLÉSECRÉTARIAT</p><h1>{e(report.name)}</h1>'
            f'<p>{e(sections.subtitle(report))}</p></header><main>'
            f'<div class="tiles">{tiles}</div><div class="columns"><div>{left}</div><div>{right}</div></div>'
            f'{_escalations(report)}<h2>En images</h2>{_figures(report)}'
            f'<footer>{e(sections.colophon(report))}</footer></main></body></html>\n')


def _section(section: sections.Section) -> str:
    e = html.escape
    rows = "".join(f'<tr{" class=strong" if r.strong else ""}><td>{e(r.label)}</td><td class="v">{e(r.value)}</td></tr>'
                   for r in section.rows)
    note = f'<p class="note">{e(section.note)}</p>' if section.note else ""
    return f"<section><h2>{e(section.title)}</h2><table>{rows}</table>{note}</section>"


def _escalations(report: Report) -> str:
    e = html.escape
    heads = ("Niveau", "Déclenchées", "Acquittées", "Refus", "Épuisées", "Délai médian", "Le plus long")
    head = "".join(f'<th{"" if i == 0 else " class=v"}>{e(h)}</th>' for i, h in enumerate(heads))
    body = "".join(
        f"<tr><td><b>{e(words.tier(t.tier))}</b></td><td class=v>{t.started}</td>"
        f"<td class=v>{t.acknowledged}/{t.started}</td><td class=v>{t.declined_steps}</td>"
        f"<td class=v>{t.exhausted}</td><td class=v>{e(words.seconds(t.ack_delay.p50))}</td>"
        f"<td class=v>{e(words.seconds(t.ack_delay.worst))}</td></tr>" for t in report.kpis.escalations)
    if not body:
        body = '<tr><td colspan="7">Aucune escalade sur la période.</td></tr>'
    lines = sections.unacknowledged_lines(report)
    listed = ("<p><b>Chaînes restées sans accusé de réception</b></p><ul>"
              + "".join(f"<li>{e(line)}</li>" for line in lines) + "</ul>") if lines else ""
    note = "Délai : du déclenchement de la chaîne à l'accusé de réception d'un praticien."
    return (f"<section><h2>Escalades</h2><table><tr>{head}</tr>{body}</table>{listed}"
            f'<p class="note">{e(note)}</p></section>')


def _figures(report: Report) -> str:
    out = []
    with charts.drawing():
        for draw, size in ((charts.draw_heat_map, (10, 3.4)), (charts.draw_service_level, (10, 3.2)),
                           (charts.draw_answer_times, (10, 3.0)), (charts.draw_escalations, (10, 2.6)),
                           (charts.draw_ack_delays, (10, 1.9))):
            fig = charts.figure(*size)
            draw(fig.add_subplot(), report)
            out.append(f'<figure role="img">{charts.svg(fig)}</figure>')
    return "".join(out)
