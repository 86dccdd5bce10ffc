"""The PDF report, A4 portrait, drawn page by page with matplotlib's PdfPages.

Why PdfPages rather than an HTML-to-PDF engine: the charts are matplotlib figures already, so
the PDF needs no second toolchain (no browser, no WeasyPrint, no LaTeX), embeds its fonts
(DejaVu Sans as TrueType: accents print anywhere) and renders the same in the daemon, the CLI and
the API. The tables are laid out on the page by hand, in inches from the top.

Page 1: the practice and the period, four headline tiles, the figures section by section, the
escalations per tier and the unacknowledged chains. Page 2: the pictures.
"""

from __future__ import annotations

import datetime as dt
import io

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Rectangle

from callrouter.reports import charts, sections, words
from callrouter.reports.charts import BLUE, GRID, INK, MUTED, ORANGE, SAND, TEAL
from callrouter.reports.content import Report

WIDTH, HEIGHT = 8.27, 11.69  # A4, inches
MARGIN = 0.6
ROW = 0.205  # a table row, inches


class Page:
    """One A4 figure with positions in inches from the top-left corner."""

    def __init__(self) -> None:
        self.fig = Figure(figsize=(WIDTH, HEIGHT))

    def x(self, inches: float) -> float:
        return inches / WIDTH

    def y(self, inches_from_top: float) -> float:
        return 1 - inches_from_top / HEIGHT

    def text(self, left: float, top: float, s: str, **kw) -> None:
        kw.setdefault("va", "baseline")
        self.fig.text(self.x(left), self.y(top), s, **kw)

    def box(self, left: float, top: float, width: float, height: float, colour: str, rounded: bool = False) -> None:
        xy, w, h = (self.x(left), self.y(top + height)), width / WIDTH, height / HEIGHT
        patch = (FancyBboxPatch(xy, w, h, boxstyle="round,pad=0,rounding_size=0.008", facecolor=colour,
                                edgecolor="none", transform=self.fig.transFigure)
                 if rounded else Rectangle(xy, w, h, facecolor=colour, edgecolor="none", transform=self.fig.transFigure))
        self.fig.add_artist(patch)

    def rule(self, left: float, top: float, width: float, colour: str = GRID, weight: float = 0.6) -> None:
        self.fig.add_artist(_line(self, left, top, width, colour, weight))


def _line(page: Page, left: float, top: float, width: float, colour: str, weight: float):
    from matplotlib.lines import Line2D

    return Line2D([page.x(left), page.x(left + width)], [page.y(top), page.y(top)], color=colour,
                  linewidth=weight, transform=page.fig.transFigure)


def render_pdf(report: Report) -> bytes:
    out = io.BytesIO()
    with charts.drawing():
        with PdfPages(out, metadata=_metadata(report)) as pdf:
            for number, page in enumerate((_summary(report), _pictures(report)), start=1):
                _footer(page, report, number, 2)
                pdf.savefig(page.fig)
    return out.getvalue()


def _metadata(report: Report) -> dict:
    return {"Title": sections.title(report), "Subject": sections.subtitle(report), "Author": "callrouter",
            "Creator": "callrouter", "CreationDate": report.generated_at.astimezone(dt.timezone.utc)}


def _header(page: Page, report: Report) -> float:
    page.box(0, 0, WIDTH, 1.35, BLUE)
    page.text(MARGIN, 0.42, "RAPPORT D'ACTIVITÉ DU TÉLÉSECRÉTARIAT", color="#cfe0ee", fontsize=8.5,
              fontweight="bold")
    page.text(MARGIN, 0.8, report.name, color="white", fontsize=19, fontweight="bold")
    page.text(MARGIN, 1.12, sections.subtitle(report), color="white", fontsize=10.5)
    return 1.35


def _tiles(page: Page, report: Report, top: float) -> float:
    tiles = sections.headlines(report)
    gap = 0.15
    width = (WIDTH - 2 * MARGIN - gap * (len(tiles) - 1)) / len(tiles)
    for i, tile in enumerate(tiles):
        left = MARGIN + i * (width + gap)
        page.box(left, top, width, 1.05, SAND, rounded=True)
        page.text(left + 0.14, top + 0.27, tile.label, fontsize=8, color=MUTED, fontweight="bold")
        colour = INK if tile.good is None else (TEAL if tile.good else ORANGE)
        page.text(left + 0.14, top + 0.63, tile.value, fontsize=20, fontweight="bold", color=colour)
        for j, line in enumerate(_wrap(tile.detail, 34)[:2]):
            page.text(left + 0.14, top + 0.84 + j * 0.11, line, fontsize=6.3, color=MUTED)
    return top + 1.05


def _section(page: Page, section: sections.Section, left: float, top: float, width: float) -> float:
    page.text(left, top + 0.18, section.title, fontsize=10.5, fontweight="bold", color=BLUE)
    page.rule(left, top + 0.27, width, BLUE, 1.2)
    y = top + 0.27
    for row in section.rows:
        y += ROW
        weight = "bold" if row.strong else "normal"
        page.text(left, y - 0.055, row.label, fontsize=8, fontweight=weight)
        page.text(left + width, y - 0.055, row.value, fontsize=8, fontweight=weight, ha="right")
        page.rule(left, y, width)
    if section.note:
        y += 0.05
        for line in _wrap(section.note, int(width * 17.5)):
            y += 0.15
            page.text(left, y, line, fontsize=6.5, color=MUTED, style="italic")
    return y + 0.25


def _escalation_table(page: Page, report: Report, top: float) -> float:
    width = WIDTH - 2 * MARGIN
    page.text(MARGIN, top + 0.18, "Escalades", fontsize=10.5, fontweight="bold", color=BLUE)
    page.rule(MARGIN, top + 0.27, width, BLUE, 1.2)
    heads = ("Niveau", "Déclenchées", "Acquittées", "Refus", "Épuisées", "Délai médian", "Le plus long")
    columns = [MARGIN] + [MARGIN + 2.0 + i * (width - 2.0) / 6 for i in range(1, 7)]
    y = top + 0.27 + ROW
    for i, head in enumerate(heads):
        page.text(columns[i], y - 0.055, head, fontsize=7.5, color=MUTED, fontweight="bold",
                  ha="left" if i == 0 else "right")
    page.rule(MARGIN, y, width)
    tiers = report.kpis.escalations
    for t in tiers:
        y += ROW
        acked = f"{t.acknowledged}/{t.started}" if t.started else words.NONE
        cells = (words.tier(t.tier), str(t.started), acked, str(t.declined_steps), str(t.exhausted),
                 words.seconds(t.ack_delay.p50), words.seconds(t.ack_delay.worst))
        for i, cell in enumerate(cells):
            page.text(columns[i], y - 0.055, cell, fontsize=8, ha="left" if i == 0 else "right",
                      color=ORANGE if i == 4 and t.exhausted else INK, fontweight="bold" if i == 0 else "normal")
        page.rule(MARGIN, y, width)
    if not tiers:
        y += ROW
        page.text(MARGIN, y - 0.055, "Aucune escalade sur la période.", fontsize=8, color=MUTED)
    lines = sections.unacknowledged_lines(report)
    if lines:
        y += 0.3
        page.text(MARGIN, y, "Chaînes restées sans accusé de réception", fontsize=8, fontweight="bold", color=INK)
        for line in lines[:12]:
            y += 0.17
            page.text(MARGIN + 0.1, y, f"•  {line}", fontsize=7.5)
        if len(lines) > 12:
            y += 0.17
            page.text(MARGIN + 0.1, y, f"… et {len(lines) - 12} autres (voir l'export CSV)", fontsize=7.5, color=MUTED)
    y += 0.22
    page.text(MARGIN, y, "Délai : du déclenchement de la chaîne à l'accusé de réception d'un praticien.",
              fontsize=6.5, color=MUTED, style="italic")
    return y


def _summary(report: Report) -> Page:
    page = Page()
    top = _tiles(page, report, _header(page, report) + 0.3) + 0.3
    calls, answer, callbacks, closed, _ = sections.sections(report)
    column = (WIDTH - 2 * MARGIN - 0.4) / 2
    right = MARGIN + column + 0.4
    left_end = _section(page, closed, MARGIN, _section(page, calls, MARGIN, top, column), column)
    right_end = _section(page, callbacks, right, _section(page, answer, right, top, column), column)
    _escalation_table(page, report, max(left_end, right_end))
    return page


def _pictures(report: Report) -> Page:
    page = Page()
    fig = page.fig
    grid = fig.add_gridspec(4, 2, left=0.1, right=0.93, top=0.915, bottom=0.095, hspace=0.6, wspace=0.32,
                            height_ratios=(1.1, 1, 0.75, 0.55))
    page.text(MARGIN, 0.45, f"{report.name} · {sections.subtitle(report)}", fontsize=8.5, color=MUTED)
    charts.draw_heat_map(fig.add_subplot(grid[0, :]), report)
    charts.draw_service_level(fig.add_subplot(grid[1, :]), report)
    charts.draw_answer_times(fig.add_subplot(grid[2:, 0]), report)
    charts.draw_escalations(fig.add_subplot(grid[2, 1]), report)
    charts.draw_ack_delays(fig.add_subplot(grid[3, 1]), report)
    return page


def _footer(page: Page, report: Report, number: int, total: int) -> None:
    page.rule(MARGIN, HEIGHT - 0.45, WIDTH - 2 * MARGIN)
    page.text(MARGIN, HEIGHT - 0.3, sections.colophon(report), fontsize=6.5, color=MUTED)
    page.text(WIDTH - MARGIN, HEIGHT - 0.3, f"page {number}/{total}", fontsize=6.5, color=MUTED, ha="right")


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])
