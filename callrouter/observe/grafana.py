"""Grafana's dashboard JSON model, built from a few plain values: a panel is a title, its kind and
its PromQL targets; a dashboard lays its panels out three to a row (callrouter.observe.dashboards
holds the five dashboards). Every query goes to the `datasource` variable (a Prometheus data
source, the one deploy/grafana/provisioning declares by default)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
DEFAULT_DATASOURCE_UID = "callrouter-prometheus"  # deploy/grafana/provisioning/datasources
PRACTICE = "$practice"  # the practice dashboard's variable, in its expressions
WIDTH = 24  # Grafana's grid


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    targets: tuple[Target, ...]
    kind: str = "timeseries"  # timeseries | stat | bargauge
    unit: str = "short"
    description: str = ""
    width: int = 8
    height: int = 8
    thresholds: tuple[tuple[float | None, str], ...] = ()  # (from, colour), the first from None


def panel(title: str, *targets: Target | str, **options: Any) -> Panel:
    return Panel(title, tuple(t if isinstance(t, Target) else Target(t) for t in targets), **options)


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    practice_variable: bool = False
    tags: tuple[str, ...] = field(default=("callrouter",))

    def expressions(self) -> list[str]:
        """Every PromQL expression of its panels, the variables as written."""
        return [t.expr for p in self.panels for t in p.targets]


PRACTICE_QUERY = "label_values(callrouter_calls_total, practice)"


def model(d: Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana stores it (schemaVersion 38, Grafana 9 and later)."""
    panels, x, y, row_height = [], 0, 0, 0
    for i, p in enumerate(d.panels, start=1):
        if x + p.width > WIDTH:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel(i, p, {"x": x, "y": y, "w": p.width, "h": p.height}))
        x, row_height = x + p.width, max(row_height, p.height)
    variables: list[dict[str, Any]] = [{
        "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
        "current": {"text": "Prometheus", "value": DEFAULT_DATASOURCE_UID}, "hide": 0}]
    if d.practice_variable:
        variables.append({
            "name": "practice", "label": "Practice", "type": "query", "datasource": DATASOURCE,
            "definition": PRACTICE_QUERY, "query": {"query": PRACTICE_QUERY, "refId": "practices"},
            "regex": "/^(?!unknown$).*/", "refresh": 2, "sort": 1, "includeAll": False, "multi": False,
            "hide": 0})
    return {
        "uid": d.uid, "title": d.title, "description": d.description, "tags": list(d.tags),
        "editable": True, "graphTooltip": 1, "schemaVersion": 38, "version": 1, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"}, "timezone": "browser",
        "templating": {"list": variables}, "annotations": {"list": []}, "panels": panels,
    }


def _panel(panel_id: int, p: Panel, grid: dict[str, int]) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": p.unit}
    if p.thresholds:
        defaults["thresholds"] = {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in p.thresholds]}
        defaults["color"] = {"mode": "thresholds"}
    out: dict[str, Any] = {
        "id": panel_id, "type": p.kind, "title": p.title, "description": p.description, "gridPos": grid,
        "datasource": DATASOURCE, "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": t.expr,
                     "legendFormat": t.legend or "__auto", "range": True, "instant": False}
                    for i, t in enumerate(p.targets)],
    }
    if p.kind == "stat":
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                          "colorMode": "background" if p.thresholds else "value", "graphMode": "none",
                          "textMode": "auto"}
    elif p.kind == "timeseries":
        out["options"] = {"legend": {"displayMode": "list", "placement": "bottom"},
                          "tooltip": {"mode": "multi", "sort": "desc"}}
    return out


def render(d: Dashboard) -> str:
    return json.dumps(model(d), ensure_ascii=False, indent=2) + "\n"
