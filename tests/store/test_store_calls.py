"""Call records: created at arrival, updated as the call progresses, closed once, crash-safe."""

import datetime as dt
import logging

import pytest

from callrouter.ports import CallStore
from callrouter.store.calls import CallQuery, CallRepository, UnknownCall
from callrouter.web.serialise import CSV_COLUMNS, csv_rows, serialise_call

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.fixture
def calls(db):
    return CallRepository(db)


def test_repository_implements_the_call_store_port(calls):
    assert isinstance(calls, CallStore)


def test_full_call_is_recorded_with_every_timestamp_leg_and_answer(calls):
    calls.open_call("c1", "cabinet-a", "+33142000001", "+33612345678", at(0), worker="w1")
    calls.ivr_answered("c1", at(1))
    calls.add_ivr_answer("c1", "triage", "3", at(5))
    calls.set_route("c1", "open", "appointment", at(5))
    calls.queued("c1", "general", at(6))
    leg = calls.add_leg("c1", "secretary", "alice", at(20))
    calls.offered("c1", "alice", at(20))
    calls.offered("c1", "bob", at(30))
    calls.answered("c1", "alice", at(36))
    calls.end_leg(leg, "hangup", at(100))
    assert calls.close_call("c1", "answered", at(100))

    rec = serialise_call(calls.get("c1"))
    assert rec["caller"] == "+33612345678"
    assert rec["arrived_at"] == at(0).isoformat()
    assert rec["ivr_answered_at"] == at(1).isoformat()
    assert rec["offered_at"] == at(20).isoformat()
    assert rec["answered_at"] == at(36).isoformat()
    assert rec["ended_at"] == at(100).isoformat()
    assert (rec["route"], rec["reason"], rec["queue"]) == ("open", "appointment", "general")
    assert rec["queue_wait_seconds"] == 30.0
    assert rec["outcome"] == "answered" and rec["secretary"] == "alice"
    assert rec["ivr_answers"] == [{"menu": "triage", "digit": "3", "at": at(5).isoformat()}]
    assert [(leg["kind"], leg["party"], leg["end_cause"]) for leg in rec["legs"]] == [
        ("caller", "+33612345678", "answered"), ("secretary", "alice", "hangup")]


def test_a_cause_longer_than_its_column_is_clipped_and_the_leg_and_call_still_close(calls):
    """A worker's SIP reason can be of any length: its write must not be refused by the column
    (the leg or the call would stay open for good)."""
    long_reason = "503 " + "Service Unavailable; worker full " * 20
    calls.open_call("c1", "p", "+33100000000", None, at(0))
    leg = calls.add_leg("c1", "secretary", "alice", at(1))
    calls.end_leg(leg, long_reason, at(2))
    assert calls.close_call("c1", "failed", at(3), cause=long_reason)
    rec = serialise_call(calls.get("c1"))
    assert rec["ended_at"] == at(3).isoformat() and all(leg["ended_at"] for leg in rec["legs"])
    causes = [rec["cause"]] + [leg["end_cause"] for leg in rec["legs"]]
    assert all(len(c) == 200 and c.startswith("503 Service Unavailable") and c.endswith("…") for c in causes)


def test_times_come_back_as_aware_utc(calls):
    paris = dt.timezone(dt.timedelta(hours=1))
    calls.open_call("c1", "p", "+33100000000", None, dt.datetime(2026, 3, 2, 9, 0, tzinfo=paris))
    assert calls.get("c1").arrived_at == T0
    assert calls.get("c1").arrived_at.tzinfo is not None


def test_naive_times_are_refused(calls):
    with pytest.raises(Exception, match="naive"):
        calls.open_call("c1", "p", "+33100000000", None, dt.datetime(2026, 3, 2, 9, 0))


def test_abandoned_in_queue_counts_wait_until_the_end(calls):
    calls.open_call("c1", "p", "+33100000000", None, at(0))
    calls.queued("c1", "general", at(10))
    calls.close_call("c1", "abandoned", at(70))
    assert calls.get("c1").queue_wait_seconds == 60.0


def test_a_call_closes_once(calls):
    calls.open_call("c1", "p", "+33100000000", None, at(0))
    assert calls.close_call("c1", "voicemail", at(10))
    assert not calls.close_call("c1", "answered", at(20))
    assert calls.get("c1").outcome == "voicemail"


def test_failed_needs_a_cause_and_outcomes_are_checked(calls):
    calls.open_call("c1", "p", "+33100000000", None, at(0))
    with pytest.raises(ValueError, match="cause"):
        calls.close_call("c1", "failed", at(1))
    with pytest.raises(ValueError, match="unknown outcome"):
        calls.close_call("c1", "lost", at(1))
    assert calls.get("c1").ended_at is None


def test_unknown_call_is_reported(calls):
    with pytest.raises(UnknownCall):
        calls.queued("nope", "general", at(0))
    with pytest.raises(UnknownCall):
        calls.close_call("nope", "answered", at(0))


def test_close_orphans_closes_only_open_calls_with_the_cause(calls):
    calls.open_call("open1", "p", "+33100000000", None, at(0))
    calls.open_call("open2", "p", "+33100000001", None, at(1))
    calls.open_call("done", "p", "+33100000002", None, at(2))
    calls.close_call("done", "answered", at(3))
    closed = calls.close_orphans("controller restart", at(50))
    assert sorted(closed) == ["open1", "open2"]
    rec = calls.get("open1")
    assert (rec.outcome, rec.cause, rec.ended_at) == ("failed", "controller restart", at(50))
    assert calls.get("done").outcome == "answered"
    assert calls.open_calls() == []


def test_worker_lost_closes_only_that_workers_calls(calls):
    calls.open_call("a", "p", "+33100000000", None, at(0), worker="w1")
    calls.open_call("b", "p", "+33100000001", None, at(0), worker="w2")
    assert calls.close_worker_calls("w1", "worker_lost", at(9)) == ["a"]
    assert calls.get("a").cause == "worker_lost"
    assert calls.get("b").ended_at is None


def test_query_filters_by_practice_time_and_outcome(calls):
    calls.open_call("a", "p1", "+33100000000", None, at(0))
    calls.open_call("b", "p2", "+33100000001", None, at(10))
    calls.open_call("c", "p1", "+33100000002", None, at(20))
    calls.close_call("c", "overflow", at(30))
    ids = lambda q: [c.id for c in calls.query(q)]  # noqa: E731
    assert ids(CallQuery()) == ["c", "b", "a"]
    assert ids(CallQuery(practices=frozenset({"p1"}))) == ["c", "a"]
    assert ids(CallQuery(practices=frozenset())) == []
    assert ids(CallQuery(since=at(5), until=at(20))) == ["b"]
    assert ids(CallQuery(outcome="overflow")) == ["c"]
    assert ids(CallQuery(limit=1)) == ["c"]


def test_csv_rows_flatten_ivr_digits(calls):
    calls.open_call("a", "p1", "+33100000000", "+33611111111", at(0))
    calls.add_ivr_answer("a", "triage", "2", at(3))
    calls.add_ivr_answer("a", "sub", "1", at(4))
    (row,) = csv_rows(calls.query(CallQuery()))
    assert row[0] == "a" and row[-1] == "21" and "+33611111111" in row


def test_caller_number_is_masked_in_logs(calls, caplog):
    caplog.set_level(logging.DEBUG)
    calls.open_call("a", "p1", "+33100000000", "+33612345678", at(0))
    assert "+33612345678" not in caplog.text
    assert "+33*******78" in caplog.text


def test_database_errors_do_not_show_the_caller_number(db, calls):
    from callrouter.store.models import CallRecord

    calls.open_call("dup", "p1", "+33100000000", "+33612345678", at(0))
    with pytest.raises(Exception) as err:
        with db.transaction() as s:
            s.add(CallRecord(id="dup", practice="p1", number="+33100000000",
                             caller="+33612345678", node="local", arrived_at=at(1)))
    assert "+33612345678" not in str(err.value)


def test_replayed_writes_change_nothing(calls):
    """A write retried after a lost commit acknowledgement must not duplicate anything."""
    for _ in range(2):
        calls.open_call("c1", "p", "+33100000000", "+33611111111", at(0))
    legs = {calls.add_leg("c1", "secretary", "alice", at(3)) for _ in range(2)}
    for _ in range(2):
        calls.add_ivr_answer("c1", "triage", "2", at(2))
    calls.add_ivr_answer("c1", "triage", "2", at(4))  # the same key pressed again later
    rec = serialise_call(calls.get("c1"))
    assert len(legs) == 1
    assert [leg["kind"] for leg in rec["legs"]] == ["caller", "secretary"]
    assert [a["at"] for a in rec["ivr_answers"]] == [at(2).isoformat(), at(4).isoformat()]


def test_repository_signatures_match_the_port():
    """A fake CallStore written from the Protocol will also fit the real repository."""
    import inspect

    for name, member in vars(CallStore).items():
        if name.startswith("_") or not callable(member):
            continue
        assert inspect.signature(getattr(CallRepository, name)) == inspect.signature(member), name


@pytest.mark.parametrize("value, expected", [
    ("+33612345678", "+33612345678"),
    ("-3.5", "-3.5"),
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3+cmd", "'-2+3+cmd"),
    ("\tx", "'\tx"),
    ("plain", "plain"),
    ("", ""),
])
def test_csv_cells_cannot_carry_spreadsheet_formulas(value, expected):
    from callrouter.web.serialise import csv_safe

    assert csv_safe(value) == expected


def test_csv_export_defuses_a_hostile_call_id(calls):
    calls.open_call("=cmd|'/C calc'!A0", "p1", "+33100000000", "+33611111111", at(0))
    (row,) = csv_rows(calls.query(CallQuery()))
    assert row[0] == "'=cmd|'/C calc'!A0" and row[3] == "+33611111111"


def test_crash_sweeps_leave_other_nodes_calls_alone(db):
    node_a, node_b = CallRepository(db, node="a"), CallRepository(db, node="b")
    node_a.open_call("from-a", "p", "+33100000000", None, at(0), worker="w1")
    node_b.open_call("from-b", "p", "+33100000001", None, at(0), worker="w1")
    assert node_a.close_worker_calls("w1", "worker_lost", at(5)) == ["from-a"]
    node_a.open_call("from-a2", "p", "+33100000002", None, at(6))
    assert node_a.close_orphans("controller restart", at(9)) == ["from-a2"]
    assert node_b.get("from-b").ended_at is None


def test_a_record_keeps_the_rules_version_and_the_reasons_of_its_latest_decision(calls):
    calls.open_call("a", "p1", "+33100000000", "+33611111111", at(0))
    calls.set_route("a", "open", "", at(1), dialplan_version="v1",
                    why=("open: weekly hours", "route 'open': menu 'triage'"))
    calls.set_route("a", "open", "appointment", at(5), dialplan_version="v1",
                    why=("open: weekly hours", "menu 'triage', 3 (appointment): queue 'general'"))
    rec = serialise_call(calls.get("a"))
    assert rec["dialplan_version"] == "v1"
    assert rec["why"] == ["open: weekly hours", "menu 'triage', 3 (appointment): queue 'general'"]
    (row,) = csv_rows(calls.query(CallQuery()))
    assert row[CSV_COLUMNS.index("dialplan_version")] == "v1"
    assert row[CSV_COLUMNS.index("why")] == "open: weekly hours | menu 'triage', 3 (appointment): queue 'general'"


def test_a_record_routed_before_versions_were_kept_reads_as_no_reasons(calls):
    calls.open_call("a", "p1", "+33100000000", None, at(0))
    calls.set_route("a", "open", "appointment", at(5))
    rec = serialise_call(calls.get("a"))
    assert rec["dialplan_version"] is None and rec["why"] == []
