"""The report's figures against values computed by hand (tests/reports/seed.py) from records
written by the real repositories on SQLite and PostgreSQL, over a week with the spring clock
change; and the same figures in the text, CSV and JSON reports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest

from callrouter.reports.content import build_report, period_of
from callrouter.reports.render import render
from callrouter.store.kpi_queries import KpiQueries
from tests.reports import seed as S

GENERATED = dt.datetime(2026, 3, 30, 5, 0, tzinfo=dt.timezone.utc)


def week_report(db):
    ids = S.seed(db)
    since, until = S.WEEK.bounds(S.PARIS)
    records = KpiQueries(db).records([S.PRACTICE], since - dt.timedelta(days=2), until + dt.timedelta(days=2))
    return build_report(S.PRACTICE, S.NAME, S.PARIS, S.WEEK, records, GENERATED), ids


def test_the_week_across_the_clock_change_gives_the_figures_computed_by_hand(db):
    report, ids = week_report(db)
    c = report.kpis.calls
    assert {k: getattr(c, k) for k in S.EXPECTED_CALLS} == S.EXPECTED_CALLS
    assert (c.service_level.numerator, c.service_level.denominator) == S.EXPECTED_SERVICE_LEVEL
    assert (c.missed.numerator, c.missed.denominator) == S.EXPECTED_MISSED
    assert {"p50": c.answer_time.p50, "p90": c.answer_time.p90, "mean": c.answer_time.mean} == S.EXPECTED_ANSWER
    assert sorted(report.answer_times) == [8.0, 12.0, 25.0, 30.0, 45.0]
    cb = report.kpis.callbacks
    assert (cb.created, cb.done, cb.expired) == (3, 2, 1)
    assert cb.delay.p50 == pytest.approx(S.EXPECTED_CALLBACKS["delay_p50"])
    assert cb.delay.worst == 30 * 3600  # the clock change's hour is not counted twice
    assert cb.delay.p90 == pytest.approx(S.EXPECTED_CALLBACKS["delay_p90"])
    assert (cb.messages_left, cb.messages_called_back) == (2, 1)
    assert [(d.calls.service_level.numerator, d.calls.service_level.denominator) for d in report.days] \
        == S.EXPECTED_DAYS
    assert report.days[-1].calls.service_level.value is None  # Sunday: no rate, not 0 %
    assert [d.period.bounds(S.PARIS)[1] - d.period.bounds(S.PARIS)[0] for d in report.days][-1] \
        == dt.timedelta(hours=23)
    ooh = report.kpis.out_of_hours
    assert {"received": ooh.received, **{k: v for k, v in ooh.got.items() if v}} == S.EXPECTED_OUT_OF_HOURS
    assert {(w, h): n for w, row in enumerate(report.heat) for h, n in enumerate(row) if n} == S.EXPECTED_HEAT
    urgent, vital = report.kpis.escalations
    assert (urgent.tier, urgent.started, urgent.acknowledged, urgent.declined_steps, urgent.exhausted) \
        == ("urgent", 2, 1, 1, 1)
    assert (urgent.ack_delay.p50, vital.ack_delay.p50, vital.ack_delay.worst) == (90.0, 240.0, 240.0)
    assert [c.id for c in report.unacknowledged()] == [ids["exhausted"]]


def test_the_text_report_reads_in_french_with_rates_as_numerator_and_denominator(db):
    report, ids = week_report(db)
    text = render(report, "text").body.decode()
    assert text.startswith("Rapport d'activité du télésecrétariat — Cabinet médical de l'Étang\n"
                           "Semaine 13, du lundi 23 mars au dimanche 29 mars 2026\n")
    lines = text.splitlines()
    row = {line.split(" .")[0]: line.rsplit(". ", 1)[1] for line in lines if " .." in line}
    assert row["Niveau de service (à 30\u00a0s)"] == "4/8 (50\u202f%)"
    assert row["Taux d'appels manqués"] == "2/8 (25\u202f%)"
    assert row["Rappels effectués (patient joint)"] == "2/3 (67\u202f%)"
    assert row["Délai de rappel, médiane"] == "15\u00a0h\u00a010\u00a0min"
    assert row["Urgent : délai d'acquittement, médiane"] == "1\u00a0min\u00a030\u00a0s"
    assert "  dim. 29/03 : -" in lines  # a day without calls to rate
    assert f"  - E{ids['exhausted']} · Urgent · déclenchée le 26/03/2026 à 11\u00a0h\u00a010, refusée par 1 praticien" \
        in lines


def test_the_csv_and_json_give_the_same_figures(sqlite_db):
    report, _ = week_report(sqlite_db)
    body = render(report, "csv").body.decode("utf-8")
    assert body.startswith("\ufeff")  # spreadsheets read it as UTF-8
    rows = {r["clé"]: r for r in csv.DictReader(io.StringIO(body[1:]), delimiter=";")}
    assert (rows["service_level"]["numérateur"], rows["service_level"]["dénominateur"]) == ("4", "8")
    assert rows["missed"]["valeur"] == "2/8 (25 %)"
    assert rows["callback_delay_p90"]["numérateur"] == "97320"
    assert rows["service_level_2026-03-29"]["valeur"] == "-"
    data = json.loads(render(report, "json").body)
    assert data["calls"]["service_level"] == {"numerator": 4, "denominator": 8, "rate": 0.5, "threshold_s": 30.0,
                                              "target": 0.8}
    assert data["days"][-1]["service_level"]["rate"] is None
    assert data["calls_by_weekday_and_hour"][6][3] == 1 and data["timezone"] == "Europe/Paris"
    assert render(report, "pdf").filename == "rapport-cabinet-exemple-2026-W13.pdf"


def test_a_period_without_calls_has_no_rates(sqlite_db):
    report = build_report(S.PRACTICE, S.NAME, S.PARIS, S.WEEK, KpiQueries(sqlite_db).records([S.PRACTICE],
                          *S.WEEK.bounds(S.PARIS)), GENERATED)
    text = render(report, "text").body.decode()
    assert "Niveau de service : - (- décrochés" in text and "Taux d'appels manqués ......" in text
    assert re.findall(r"(?<![\d,])(?:0|100)\u202f%", text) == []  # no rate of 0 % or 100 % without calls
    for fmt in ("html", "pdf"):
        assert render(report, fmt).body  # the pictures say there is nothing to draw


def test_the_period_is_the_local_days_asked_or_the_last_full_week():
    monday_morning = dt.datetime(2026, 3, 29, 22, 30, tzinfo=dt.timezone.utc)  # Monday 30, 00:30 in Paris
    assert period_of(None, None, monday_morning, S.PARIS) == S.WEEK
    assert period_of(dt.date(2026, 3, 23), None, monday_morning, S.PARIS) == S.WEEK
    assert period_of(dt.date(2026, 3, 1), dt.date(2026, 3, 31), monday_morning, S.PARIS).days()[-1].start \
        == dt.date(2026, 3, 31)
    with pytest.raises(ValueError, match="before the first"):
        period_of(dt.date(2026, 3, 2), dt.date(2026, 3, 1), monday_morning, S.PARIS)
    with pytest.raises(ValueError, match="at most 366 days"):
        period_of(dt.date(2025, 1, 1), dt.date(2026, 3, 1), monday_morning, S.PARIS)
