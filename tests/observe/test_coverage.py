"""Open with nobody to answer, and when an on-call rota ends: read from the dialplan at an instant."""

from __future__ import annotations

import datetime as dt

import pytest

from callrouter.observe.coverage import ROTA_HORIZON, rota_end, staffing
from tests.factories import dialplan_text, load_one

UTC = dt.timezone.utc
MONDAY_10H = dt.datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # 10:00 in Paris, open
MONDAY_21H = dt.datetime(2026, 6, 1, 19, 0, tzinfo=UTC)  # closed
WHIT_MONDAY = dt.datetime(2026, 5, 25, 8, 0, tzinfo=UTC)  # a public holiday, 10:00


@pytest.fixture
def dialplan(tmp_path):
    return load_one(tmp_path, dialplan_text())


def test_an_open_practice_whose_secretaries_are_all_out_is_unstaffed(dialplan):
    asked = []

    def staffed(practice, queue, line):
        asked.append((practice, queue, line))
        return False

    assert staffing(dialplan, MONDAY_10H, staffed) == (True, True)
    assert asked == [("test-practice", "general", "test-practice/general")]  # the queue its menu leads to
    assert staffing(dialplan, MONDAY_10H, lambda *a: True) == (True, False)


def test_a_closed_practice_or_a_holiday_is_never_unstaffed(dialplan):
    assert staffing(dialplan, MONDAY_21H, lambda *a: False) == (False, False)
    assert staffing(dialplan, WHIT_MONDAY, lambda *a: False) == (False, False)


def test_an_open_route_that_reaches_no_queue_needs_nobody(tmp_path):
    dialplan = load_one(tmp_path, dialplan_text().replace("open: {ivr: triage}", "open: {voicemail: true}"))
    assert staffing(dialplan, MONDAY_10H, lambda *a: False) == (True, False)


ROTA = """\
on_call:
  until: {until}
  weekly:
    - {{days: mon-sun, hours: "08:00-20:00", who: dr-a}}
"""


def test_a_rota_ending_within_the_horizon_reports_its_last_covered_instant(tmp_path):
    dialplan = load_one(tmp_path, dialplan_text(extra=ROTA.format(until="2026-06-10")))
    assert rota_end(dialplan, MONDAY_10H) == dt.datetime(2026, 6, 10, 18, 0, tzinfo=UTC)  # 20:00 in Paris


def test_a_rota_covering_the_whole_horizon_reports_the_horizon_end(tmp_path):
    dialplan = load_one(tmp_path, dialplan_text(extra=ROTA.format(until="2027-12-31")))
    end = rota_end(dialplan, MONDAY_10H)
    assert MONDAY_10H + ROTA_HORIZON - dt.timedelta(days=1) <= end <= MONDAY_10H + ROTA_HORIZON


def test_a_rota_already_over_reports_now_and_no_rota_reports_nothing(tmp_path):
    ended = load_one(tmp_path, dialplan_text(extra=ROTA.format(until="2026-05-01")), name="a.yaml")
    assert rota_end(ended, MONDAY_10H) == MONDAY_10H
    assert rota_end(load_one(tmp_path, dialplan_text(), name="b.yaml"), MONDAY_10H) is None
