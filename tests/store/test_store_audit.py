"""The audit trail: chained, verifiable, tamper-evident, written with the change it describes."""

import datetime as dt

import pytest
from sqlalchemy import delete, update

from callrouter.store.audit import Actor, AuditLog, append, purge_before
from callrouter.store.models import AuditEntry, AuditHead
from callrouter.store.testing import drop_append_only_guard

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)
ADMIN = Actor("admin", "192.0.2.1")


@pytest.fixture
def audit(db):
    return AuditLog(db)


def fill(audit, n=5, start=T0):
    for i in range(n):
        audit.record(ADMIN, "user.update", f"user:u{i}", start + dt.timedelta(days=i),
                     before={"role": "secretary"}, after={"role": "supervisor"})


def test_entries_record_who_what_when_where_and_change(audit):
    seq = audit.record(ADMIN, "user.update", "user:alice", T0, before={"enabled": True},
                       after={"enabled": False}, details={"note": "left"})
    (e,) = audit.query()
    assert (e.seq, e.actor, e.source, e.action, e.target, e.at) == (
        seq, "admin", "192.0.2.1", "user.update", "user:alice", T0)
    assert '"enabled":true' in e.before and '"enabled":false' in e.after


def test_chain_verifies_and_reports_its_head(audit):
    fill(audit)
    report = audit.verify()
    assert report.ok and report.checked == 5
    assert (report.head_seq, report.head_hash) == (5, audit.query(limit=1)[0].hash)


def test_empty_chain_verifies(audit):
    assert audit.verify().ok


def test_the_database_refuses_to_update_an_entry(db, audit):
    fill(audit, 1)
    with pytest.raises(Exception, match="append-only"):
        with db.transaction() as s:
            s.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(actor="x"))
    assert audit.query()[0].actor == "admin"


def test_altered_row_is_detected(db, audit):
    fill(audit)
    drop_append_only_guard(db)
    with db.transaction() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor="someone else"))
    report = audit.verify()
    assert not report.ok and report.bad_seq == 3 and "altered" in report.error


def test_rehashed_row_breaks_the_link_to_the_next(db, audit):
    fill(audit)
    drop_append_only_guard(db)
    with db.transaction() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(hash="f" * 64))
    report = audit.verify()
    assert not report.ok and report.bad_seq in (2, 3)


def test_deleted_middle_row_is_detected(db, audit):
    fill(audit)
    with db.transaction() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    report = audit.verify()
    assert not report.ok and "missing" in report.error


def test_deleted_tail_is_detected(db, audit):
    fill(audit)
    with db.transaction() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 5))
    report = audit.verify()
    assert not report.ok and "missing" in report.error


def test_entry_is_rolled_back_with_the_failed_change(db, audit):
    with pytest.raises(RuntimeError):
        with db.transaction() as s:
            append(s, ADMIN, "user.create", "user:x", T0)
            raise RuntimeError("the change failed")
    assert audit.query() == []
    audit.record(ADMIN, "user.create", "user:y", T0)
    assert audit.verify().ok


def test_purge_keeps_the_chain_verifiable_from_the_anchor(db, audit):
    fill(audit, 6)
    with db.transaction() as s:
        assert purge_before(s, T0 + dt.timedelta(days=3)) == 3
    assert [e.seq for e in audit.query()] == [6, 5, 4]
    report = audit.verify()
    assert report.ok and report.checked == 3
    with db.transaction() as s:
        head = s.get(AuditHead, 1)
        assert head.anchor_seq == 3
    audit.record(ADMIN, "x", "y", T0 + dt.timedelta(days=10))
    assert audit.verify().ok


def test_purge_with_nothing_old_changes_nothing(db, audit):
    fill(audit, 2)
    with db.transaction() as s:
        assert purge_before(s, T0) == 0
    assert audit.verify().checked == 2


def test_query_filters(audit):
    fill(audit, 3)
    audit.record(Actor("bob", "cli"), "calls.export", "calls", T0 + dt.timedelta(days=1))
    assert [e.action for e in audit.query(actor="bob")] == ["calls.export"]
    assert len(audit.query(action="user.update")) == 3
    assert len(audit.query(since=T0 + dt.timedelta(days=1), until=T0 + dt.timedelta(days=2))) == 2
    assert len(audit.query(limit=2)) == 2


def test_concurrent_appends_keep_one_linear_chain(audit):
    from concurrent.futures import ThreadPoolExecutor

    def work(i):
        for j in range(8):
            audit.record(Actor(f"t{i}", "test"), "x", f"{i}-{j}", T0)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    report = audit.verify()
    assert report.ok and report.checked == 32
