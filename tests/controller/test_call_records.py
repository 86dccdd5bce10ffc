"""A call record explains itself: the dialplan version in force and the reasons of the decision.

Media is faked (the commands a worker would get); the record goes through the real recorder into a
real SQLite store.
"""

from __future__ import annotations

from callrouter.web.serialise import serialise_call
from tests.factories import examples


def test_the_record_names_the_rules_version_and_why_the_call_went_where_it_did(harness):
    h = harness
    leg = h.incoming()
    h.finish_playing(leg)  # welcome
    h.finish_playing(leg)  # triage menu
    h.digit(leg, "3")
    rec = serialise_call(h.record(h.call_id(leg)))
    martin = examples()["cabinet-dr-martin"]
    assert rec["dialplan_version"] == martin.version
    assert any("menu 'triage', 3" in line for line in rec["why"]), rec["why"]
    assert rec["why"][0].startswith("open"), rec["why"]
