"""A call record read for the API says what became of its recording (GET /api/calls/{call_id},
its `recording`): the status the recording side wrote, or not_selected when none was."""

import datetime as dt

from callrouter.store.calls import CallQuery, CallRepository
from callrouter.store.recordings import RecordingRepository
from callrouter.web.serialise import serialise_call

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)


def test_the_call_record_says_recorded_refused_or_not_selected(db):
    calls, recordings = CallRepository(db), RecordingRepository(db)
    for call_id in ("kept", "refused", "unasked"):
        calls.open_call(call_id, "cabinet-a", "+33142000001", "+33612345678", T0)
    recordings.set_status("kept", "recorded", "sampled: 100 %", T0)
    recordings.set_status("refused", "refused", "the caller refused (consent message)", T0)
    recordings.set_status("refused", "recorded", "a late write", T0)  # a refusal stays final
    said = {c: serialise_call(calls.get(c))["recording"] for c in ("kept", "refused", "unasked")}
    assert said == {
        "kept": {"status": "recorded", "reason": "sampled: 100 %"},
        "refused": {"status": "refused", "reason": "the caller refused (consent message)"},
        "unasked": {"status": "not_selected", "reason": "not asked (no recording policy applied)"},
    }
    listed = {r.id: serialise_call(r)["recording"]["status"] for r in calls.query(CallQuery(practices=frozenset({"cabinet-a"})))}
    assert listed == {"kept": "recorded", "refused": "refused", "unasked": "not_selected"}
