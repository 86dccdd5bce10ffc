"""A practice's own indicator terms (the dialplan's `kpis` section, ../shared/KPIS.md): read with
file, line and reason, and used by the report, the wallboard and the live service level alike."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from callrouter.dialplan.loader import load_paths
from callrouter.domain.kpis import CallFact, KpiParams, KpiRecords, Period
from callrouter.observe.service_level import params_of
from callrouter.reports.content import build_report
from tests.reports import seed as S

BASE = S.DIALPLAN.split("reports:")[0]
PARIS = ZoneInfo("Europe/Paris")


def load(tmp_path, kpis: str):
    path = tmp_path / "cab.yaml"
    path.write_text(BASE + kpis, encoding="utf-8")
    result = load_paths([path])
    return (result.dialplans[0] if result.dialplans else None), sorted(
        str(e).replace(str(tmp_path) + "/", "") for e in result.errors)


def test_without_a_kpis_section_the_defaults_of_kpis_md_apply(tmp_path):
    plan, errors = load(tmp_path, "")
    assert errors == [] and plan.kpis == KpiParams(short_abandon_s=5.0, sl_threshold_s=30.0, sl_target=0.8)
    assert params_of(plan) == plan.kpis and params_of(None) == KpiParams()


def test_a_practice_agrees_its_own_terms(tmp_path):
    plan, errors = load(tmp_path, "kpis:\n  short_abandon: 10s\n  sl_threshold: 1m\n  sl_target: 90%\n")
    assert errors == [] and plan.kpis == KpiParams(short_abandon_s=10.0, sl_threshold_s=60.0, sl_target=0.9)
    plan, _ = load(tmp_path, "kpis: {sl_target: 0.75}\n")
    assert plan.kpis == KpiParams(sl_target=0.75)
    assert params_of(plan).sl_target == 0.75  # the live service level and its alert use it too


def test_bad_terms_are_refused_with_file_line_and_reason(tmp_path):
    line = BASE.count("\n") + 1  # where "kpis:" is
    plan, errors = load(tmp_path, "kpis:\n  short_abandon: 2m\n  sl_threshold: vite\n  sl_target: 100%\n"
                                  "  target: 80%\n")
    assert plan is None
    assert errors == sorted([
        f"cab.yaml:{line + 1}: kpis.short_abandon: duration must be between 0s and 60s",
        f'cab.yaml:{line + 2}: kpis.sl_threshold: "vite" is not a duration; write e.g. 6s, 90s, 3m or 1h30m',
        f"cab.yaml:{line + 3}: kpis.sl_target: must be between 0% and 100% (excluded), got 100%",
        f'cab.yaml:{line + 4}: kpis.target: unknown key "target" (did you mean "sl_target"?); allowed here: short_abandon, sl_threshold, sl_target',
    ])
    _, errors = load(tmp_path, "kpis:\n  sl_threshold: 0s\n  sl_target: beaucoup\n")
    assert errors == sorted([f"cab.yaml:{line + 1}: kpis.sl_threshold: must be longer than 0s",
                             f'cab.yaml:{line + 2}: kpis.sl_target: "beaucoup" is not a share; write e.g. 80% or 0.8'])


def test_the_report_counts_the_service_level_on_the_practice_s_terms(tmp_path):
    plan, _ = load(tmp_path, "kpis: {sl_threshold: 60s, sl_target: 90%}\n")
    monday = dt.date(2026, 11, 23)
    arrived = dt.datetime(2026, 11, 23, 9, 0, tzinfo=PARIS).astimezone(dt.timezone.utc)
    second = dt.timedelta(seconds=1)
    call = CallFact("late-but-agreed", plan.practice, arrived, route="open", queue="general",
                    queued_at=arrived + second, answered_at=arrived + 46 * second, ended_at=arrived + 120 * second,
                    outcome="answered")
    period = Period(monday, monday + dt.timedelta(days=1))
    now = arrived + dt.timedelta(days=1)
    agreed = build_report(plan.practice, plan.name, PARIS, period, KpiRecords(calls=(call,)), now, plan.kpis)
    default = build_report(plan.practice, plan.name, PARIS, period, KpiRecords(calls=(call,)), now)
    assert (agreed.kpis.calls.service_level.numerator, agreed.params.sl_target) == (1, 0.9)
    assert default.kpis.calls.service_level.numerator == 0  # 45 s is late on the default 30 s
