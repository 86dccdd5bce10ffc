"""The report's pictures, drawn with matplotlib on the Agg, SVG and PDF canvases (never a display):
calls per weekday and hour as a heat map, the answer-time distribution against the threshold,
the service level per day against the target, the escalations per tier with their acknowledgement
delays. Each `draw_*` fills one Axes, so the HTML page (one SVG per chart) and the PDF pages
(several charts on an A4 page) draw the same picture.

Text is set in DejaVu Sans, from Debian's fonts-dejavu-core when installed (matplotlib's own copy
otherwise): every French accent has its glyph. matplotlib is imported here only, and its global
state is touched under one lock (the API's threads and the weekly sender may draw at once).
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from pathlib import Path
from typing import Iterator

import matplotlib

matplotlib.use("Agg")

from matplotlib import font_manager  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from callrouter.reports import words  # noqa: E402
from callrouter.reports.content import Report  # noqa: E402

# The PDF backend's font subsetting logs every glyph table at INFO: not news for an operator.
logging.getLogger("fontTools").setLevel(logging.WARNING)
DEBIAN_FONTS = Path("/usr/share/fonts/truetype/dejavu")
INK, MUTED, GRID = "#1d2b36", "#5b6b78", "#d9e0e6"
BLUE, TEAL, ORANGE, RED, SAND = "#1f5f8b", "#2a9d8f", "#e07a3f", "#c0392b", "#f4efe6"
STYLE = {
    "font.family": "DejaVu Sans", "font.size": 8.5, "text.color": INK, "axes.labelcolor": INK,
    "axes.edgecolor": GRID, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.titlelocation": "left",
    "axes.titlepad": 8, "axes.spines.top": False, "axes.spines.right": False, "xtick.color": MUTED,
    "ytick.color": MUTED, "pdf.fonttype": 42, "svg.fonttype": "path", "svg.hashsalt": "callrouter",
    "figure.dpi": 100, "savefig.dpi": 150,
}
# White for an hour without calls, then deeper blue for busier hours.
HEAT = LinearSegmentedColormap.from_list("calls", ["#ffffff", "#cfe3f1", "#6aa6cf", BLUE, "#0d2f47"])
_LOCK = threading.RLock()
_fonts_ready = False


def _prefer_debian_fonts() -> None:
    """Debian's DejaVu files first among fonts of the same name (matplotlib bundles a copy too)."""
    global _fonts_ready
    if _fonts_ready:
        return
    for path in sorted(DEBIAN_FONTS.glob("DejaVuSans*.ttf")):
        font_manager.fontManager.addfont(str(path))
    manager = font_manager.fontManager
    manager.ttflist.sort(key=lambda f: not str(f.fname).startswith(str(DEBIAN_FONTS)))
    clear = getattr(manager, "_findfont_cached", None)
    if clear is not None and hasattr(clear, "cache_clear"):
        clear.cache_clear()
    _fonts_ready = True


@contextlib.contextmanager
def drawing() -> Iterator[None]:
    """Where every figure of a report is built and saved: the lock, the fonts and the style."""
    with _LOCK:
        _prefer_debian_fonts()
        with matplotlib.rc_context(STYLE):
            yield


def font_file() -> str:
    """The file the report's text is set in (for the tests and the docs)."""
    with drawing():
        return font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))


def svg(fig: Figure) -> str:
    """The figure as an inline <svg> element: no XML prologue, no metadata, no script, glyphs as paths."""
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = out.getvalue()
    text = text[text.index("<svg"):]
    start, end = text.find("<metadata>"), text.find("</metadata>")
    return text[:start] + text[end + len("</metadata>"):] if 0 <= start < end else text


def figure(width_in: float, height_in: float) -> Figure:
    return Figure(figsize=(width_in, height_in), layout="constrained")


def _empty(ax: Axes, title: str, message: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", color=MUTED, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)


# --- the charts ------------------------------------------------------------------------------------

def draw_heat_map(ax: Axes, report: Report) -> None:
    """Calls received per weekday (rows) and local hour (columns), the count in each busy cell."""
    title = "Appels reçus par jour de la semaine et par heure"
    if not any(any(row) for row in report.heat):
        _empty(ax, title, "Aucun appel sur la période")
        return
    busy = [h for h in range(24) if any(row[h] for row in report.heat)]
    first, last = max(0, min(busy + [7]) - 1), min(23, max(busy + [19]) + 1)
    hours = list(range(first, last + 1))
    data = [[row[h] for h in hours] for row in report.heat]
    peak = max(max(r) for r in data)
    image = ax.imshow(data, aspect="auto", cmap=HEAT, vmin=0, vmax=max(peak, 1), interpolation="nearest")
    ax.set_yticks(range(7), [w.capitalize() for w in words.WEEKDAYS])
    ax.set_xticks(range(len(hours)), [f"{h}{words.NBSP}h" for h in hours], fontsize=7)
    ax.tick_params(length=0)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    for y, row in enumerate(data):
        for x, n in enumerate(row):
            if n:
                ax.text(x, y, str(n), ha="center", va="center", fontsize=6.5,
                        color="white" if n > 0.55 * peak else INK)
    ax.set_title(title)
    bar = ax.figure.colorbar(image, ax=ax, fraction=0.025, pad=0.01)
    bar.ax.yaxis.get_major_locator().set_params(integer=True)
    bar.outline.set_visible(False)
    bar.ax.tick_params(labelsize=7, length=0)
    bar.set_label("appels", fontsize=7, color=MUTED)


def draw_answer_times(ax: Axes, report: Report) -> None:
    """How long answered callers waited, in 10-second bins, with the threshold, median and p90."""
    title = "Temps de réponse des appels décrochés"
    times = report.answer_times
    if not times:
        _empty(ax, title, "Aucun appel décroché sur la période")
        return
    threshold = report.params.sl_threshold_s
    top = max(max(times), threshold) + 10
    width = 10 if top <= 240 else 30
    # Bins (a, b]: an answer at the threshold itself is within it, as the service level counts it.
    edges = [0.0] + [i * width + 1e-6 for i in range(1, int(top // width) + 2)]
    _, _, patches = ax.hist(times, bins=edges, color=BLUE, edgecolor="white", linewidth=0.8)
    for patch in patches:
        if patch.get_x() > threshold - 1e-3:
            patch.set_facecolor(ORANGE)
    ax.axvline(threshold, color=INK, linestyle="--", linewidth=1)
    ax.annotate(f"seuil {words.seconds(threshold)}", (threshold, 1), xycoords=("data", "axes fraction"),
                xytext=(4, -2), textcoords="offset points", va="top", fontsize=7.5, color=INK)
    spread = report.kpis.calls.answer_time
    ax.set_xlabel(f"secondes d'attente · médiane {words.seconds(spread.p50)} · 90{words.NBSP}% en moins de "
                  f"{words.seconds(spread.p90)}", color=MUTED)
    ax.set_ylabel("appels")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.grid(axis="y", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title)


def draw_service_level(ax: Axes, report: Report) -> None:
    """The service level of each local day as a bar, the target as a line; "-" for a day without
    calls to rate (no bar: not 0 %)."""
    title = f"Niveau de service par jour (décrochés en {words.seconds(report.params.sl_threshold_s)} ou moins)"
    target = report.params.sl_target
    days = report.days
    values = [d.calls.service_level.value for d in days]
    if all(v is None for v in values):
        _empty(ax, title, "Aucun appel à compter sur la période")
        return
    xs = range(len(days))
    heights = [100 * v if v is not None else 0 for v in values]
    colours = [TEAL if v is not None and v >= target else ORANGE for v in values]
    ax.bar(xs, heights, color=colours, width=0.7)
    ax.axhline(100 * target, color=INK, linestyle="--", linewidth=1)
    ax.annotate(f"objectif {words.percent(target)}", (1, 100 * target), xycoords=("axes fraction", "data"),
                xytext=(-2, 3), textcoords="offset points", ha="right", fontsize=7.5)
    many = len(days) > 14
    for x, d, v in zip(xs, days, values):
        rate = d.calls.service_level
        label = "sans appel" if v is None else (f"{words.percent(v)}" if many else f"{words.percent(v)}\n{words.ratio(rate)}")
        ax.text(x, (100 * v if v is not None else 0) + 2, label, ha="center", va="bottom",
                fontsize=6 if many else 7, color=MUTED if v is None else INK)
    ax.set_ylim(0, 118)
    ax.set_yticks([0, 25, 50, 75, 100], [words.percent(p / 100) for p in (0, 25, 50, 75, 100)])
    step = 1 if len(days) <= 16 else (2 if len(days) <= 35 else 7)
    ax.set_xticks(list(xs)[::step], [words.short_day(d.period.start) for d in days][::step],
                  rotation=0 if len(days) <= 8 else 45, fontsize=7, ha="center" if len(days) <= 8 else "right")
    ax.tick_params(axis="x", length=0)
    ax.grid(axis="y", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title)


def draw_escalations(ax: Axes, report: Report) -> None:
    """Per tier: chains started, acknowledged and exhausted (nobody answered)."""
    title = "Escalades par niveau"
    tiers = report.kpis.escalations
    if not tiers:
        _empty(ax, title, "Aucune escalade sur la période")
        return
    width = 0.26
    xs = range(len(tiers))
    for i, (what, colour, label) in enumerate((("started", BLUE, "déclenchées"), ("acknowledged", TEAL, "acquittées"),
                                                ("exhausted", RED, "épuisées"))):
        values = [getattr(t, what) for t in tiers]
        bars = ax.bar([x + (i - 1) * width for x in xs], values, width, color=colour, label=label)
        ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(list(xs), [words.tier(t.tier) for t in tiers])
    ax.tick_params(axis="x", length=0)
    ax.set_ylabel("chaînes")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylim(0, max(t.started for t in tiers) * 1.35 + 0.5)
    ax.legend(loc="upper right", fontsize=7, frameon=False, ncol=3, handlelength=1, columnspacing=1)
    ax.grid(axis="y", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title)


def draw_ack_delays(ax: Axes, report: Report) -> None:
    """Each acknowledged chain's delay (start to acknowledgement, minutes) as a dot on its tier's
    line, the median as a bar."""
    title = "Délais d'acquittement"
    tiers = [t for t in report.kpis.escalations if t.acknowledged]
    if not tiers:
        _empty(ax, title, "Aucune escalade acquittée sur la période")
        return
    for y, t in enumerate(tiers):
        points = [(c.acknowledged_at - c.started_at).total_seconds() / 60 for c in report.chains
                  if c.tier == t.tier and c.acknowledged_at is not None]
        ax.scatter(points, [y] * len(points), s=22, color=BLUE, alpha=0.8, zorder=3)
        ax.vlines(t.ack_delay.p50 / 60, y - 0.3, y + 0.3, color=ORANGE, linewidth=2.5, zorder=4)
        ax.annotate(f"médiane {words.seconds(t.ack_delay.p50)}", (t.ack_delay.p50 / 60, y + 0.3),
                    xytext=(3, 1), textcoords="offset points", fontsize=7, color=INK)
    ax.set_yticks(range(len(tiers)), [words.tier(t.tier) for t in tiers])
    ax.set_ylim(-0.6, len(tiers) - 0.2)
    highest = max(t.ack_delay.worst for t in tiers) / 60
    ax.set_xlim(0, highest * 1.25 + 0.5)
    ax.set_xlabel("minutes · un point par chaîne acquittée, le trait : la médiane", color=MUTED)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title)
