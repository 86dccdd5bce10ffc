"""The Grafana dashboards as Grafana reads them (no server needed): the JSON model is sound, the
panels are laid out on the grid, every query goes to the data-source variable, the practice
dashboard is templated by practice, and every expression is valid PromQL (promtool parses it)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from callrouter.observe.dashboards import DASHBOARDS
from callrouter.observe.grafana import PRACTICE, PRACTICE_QUERY, WIDTH
from tests.factories import REPO
from tests.needs import missing

FILES = {d.uid: REPO / "deploy" / "grafana" / "dashboards" / f"{d.uid}.json" for d in DASHBOARDS}


def test_the_five_dashboards_exist_with_distinct_uids_and_titles():
    assert [d.uid for d in DASHBOARDS] == ["callrouter-overview", "callrouter-practice", "callrouter-secretaries",
                                          "callrouter-escalations", "callrouter-infrastructure"]
    models = [json.loads(path.read_text()) for path in FILES.values()]
    assert len({m["title"] for m in models}) == len(models)


@pytest.mark.parametrize("uid", list(FILES))
def test_a_dashboard_model_is_laid_out_and_queries_its_data_source_variable(uid):
    model = json.loads(FILES[uid].read_text())
    names = [v["name"] for v in model["templating"]["list"]]
    assert names[0] == "datasource"
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids)) and model["panels"]
    cells = set()
    for p in model["panels"]:
        grid = p["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= WIDTH
        covered = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not covered & cells, f"{p['title']} overlaps another panel"
        cells |= covered
        assert p["datasource"]["uid"] == "${datasource}" and p["targets"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)) and all(t["expr"] and t["datasource"]["uid"] == "${datasource}"
                                                   for t in p["targets"])
    templated = any(PRACTICE in t["expr"] for p in model["panels"] for t in p["targets"])
    assert templated == (uid == "callrouter-practice")
    if templated:
        [practice] = [v for v in model["templating"]["list"] if v["name"] == "practice"]
        assert practice["query"]["query"] == PRACTICE_QUERY and practice["type"] == "query"


def test_every_panel_expression_is_valid_promql(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        missing("promtool is missing: Debian package prometheus (scripts/ensure-system-deps)")
    exprs = [e.replace(PRACTICE, "cab") for d in DASHBOARDS for e in d.expressions()]
    rules = {"groups": [{"name": "panels", "rules": [{"record": f"panel:{i}", "expr": e}
                                                      for i, e in enumerate(exprs)]}]}
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(exprs)} rules found" in done.stdout
