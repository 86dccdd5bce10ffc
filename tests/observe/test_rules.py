"""The alert and recording rules through Debian's promtool: they parse, their unit tests pass
(deploy/prometheus/tests/*.yaml), every alert has a test where it fires and one where it does not,
each has a runbook paragraph in docs/operations.md, and the files in deploy/ are what
callrouter/observe generates. Under CI a missing promtool fails the test (tests/conftest.py)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from callrouter.observe import rules
from callrouter.observe.__main__ import generated
from tests.factories import REPO

PROMETHEUS = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS / "callrouter-rules.yml"
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*.yaml"))
OPERATIONS = REPO / "docs" / "operations.md"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is missing: Debian package prometheus (scripts/ensure-system-deps)")
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, cwd=PROMETHEUS)


def test_the_files_in_deploy_are_what_callrouter_observe_generates():
    stale = [str(path.relative_to(REPO)) for path, text in generated().items()
             if not path.exists() or path.read_text() != text]
    assert stale == [], "run `python -m callrouter.observe render`"


def test_promtool_accepts_the_rules_the_quick_copy_and_the_example_config(promtool, tmp_path):
    quick = tmp_path / "quick.yml"
    quick.write_text(rules.render(rules.QUICK))
    for path in (RULES, quick):
        done = run(promtool, "check", "rules", str(path))
        assert done.returncode == 0, done.stdout + done.stderr
    done = run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_unit_tests_pass(promtool):
    assert UNIT_TESTS
    done = run(promtool, "test", "rules", *map(str, UNIT_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_catches_a_broken_expectation(promtool, tmp_path):
    """The unit tests are really checked: the same test expecting another summary fails."""
    broken = tmp_path / "broken.yaml"
    text = (PROMETHEUS / "tests" / "service.yaml").read_text().replace("../callrouter-rules.yml", str(RULES))
    broken.write_text(text.replace("is not answering its metrics scrape", "is fine"))
    done = run(promtool, "test", "rules", str(broken))
    assert done.returncode != 0 and "CallrouterDown" in done.stdout + done.stderr


def alert_cases() -> dict[str, set[str]]:
    """alert name -> {"firing", "quiet"} as the unit tests check it."""
    seen: dict[str, set[str]] = {}
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                seen.setdefault(case["alertname"], set()).add("firing" if case.get("exp_alerts") else "quiet")
    return seen


def test_every_alert_is_tested_firing_and_not_firing():
    cases = alert_cases()
    missing = {a.name: {"firing", "quiet"} - cases.get(a.name, set()) for a in rules.alerts()}
    assert {name: gap for name, gap in missing.items() if gap} == {}
    assert set(cases) <= {a.name for a in rules.alerts()}


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as dashes."""
    out = set()
    for line in markdown.splitlines():
        match = re.match(r"#+\s+(.*)", line)
        if match:
            out.add(re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-"))
    return out


def test_every_alert_has_a_summary_a_description_and_a_runbook_paragraph():
    known = anchors(OPERATIONS.read_text())
    document = yaml.safe_load(RULES.read_text())
    alerting = [r for g in document["groups"] for r in g["rules"] if "alert" in r]
    assert len(alerting) == len(rules.alerts())
    for rule in alerting:
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"], rule["alert"]
        page, _, anchor = notes["runbook_url"].partition("#")
        assert page == "docs/operations.md" and anchor in known, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning")


def test_the_quick_copy_differs_only_in_its_durations_and_the_service_level_minimum():
    production, quick = rules.document(rules.PRODUCTION), rules.document(rules.QUICK)
    for p_group, q_group in zip(production["groups"], quick["groups"]):
        for p, q in zip(p_group["rules"], q_group["rules"]):
            if "alert" in p:
                assert q["for"] == rules.QUICK.quick_for
                p = {**p, "for": None, "expr": p["expr"].replace(">= 5", ">= 1")}
                q = {**q, "for": None}
            assert p == q


def test_counters_are_read_through_rate_or_increase_only():
    """A counter's raw value resets with the process: rules and panels never compare it."""
    from callrouter.observe.dashboards import DASHBOARDS

    expressions = [expr for _, expr in rules.RECORDING] + [a.expr for a in rules.alerts()]
    expressions += [e for d in DASHBOARDS for e in d.expressions()]
    for expr in expressions:
        for name in re.findall(r"\b([a-z_:]+_total)\b", expr):
            assert re.search(rf"(rate|increase)\({re.escape(name)}\b", expr), expr
