"""The audit chain's head anchored outside the database (an HMAC keyed by a file): a full rewrite
by someone with database rights, every hash recomputed, is detected; legitimate appends and purges
keep the chain verifiable; the key file is created at first use and never silently replaced."""

import datetime as dt
import stat

import pytest
from sqlalchemy import delete, insert, select, update

from callrouter.auth import sealing
from callrouter.auth.sealing import KeyFileError
from callrouter.config import RetentionSettings
from callrouter.store.audit import Actor, AuditLog, entry_hash
from callrouter.store.audit_anchor import open_anchor, use_key
from callrouter.store.db import Database
from callrouter.store.models import AuditEntry, AuditHead
from callrouter.store.retention import RetentionPurger

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)
ADMIN = Actor("admin", "192.0.2.1")
MALLORY = Actor("mallory", "192.0.2.66")


@pytest.fixture
def key_path(tmp_path):
    return tmp_path / "var" / "audit.key"


@pytest.fixture
def audit(db, key_path):
    open_anchor(db, key_path)
    return AuditLog(db)


def fill(audit, n=5, who=ADMIN, start=T0):
    for i in range(n):
        audit.record(who, "calls.export", f"practice:cab-{i}", start + dt.timedelta(days=i), details={"records": i})


def rewrite_whole_chain(db, change):
    """What someone with write rights on the database does to hide an entry: every row rewritten
    and every hash recomputed from the anchor, consistently, the head moved to the new last hash."""
    with db.engine.begin() as conn:
        head = conn.execute(select(AuditHead)).one()
        rows = conn.execute(select(AuditEntry.__table__).order_by(AuditEntry.seq)).mappings().all()
        conn.execute(delete(AuditEntry))  # deletes are allowed (retention), updates are refused
        prev = head.anchor_hash
        for row in rows:
            fields = change(dict(row))
            fields["prev_hash"] = prev
            fields["hash"] = prev = entry_hash(prev, fields["seq"], fields["at"], fields["actor"], fields["source"],
                                               fields["action"], fields["target"], fields["before"],
                                               fields["after"], fields["details"])
            conn.execute(insert(AuditEntry.__table__).values(**fields))
        conn.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=prev))


def as_admin(row):
    return {**row, "actor": "admin", "source": "192.0.2.1"} if row["actor"] == "mallory" else row


def test_appends_are_anchored_and_verify(audit):
    fill(audit)
    report = audit.verify()
    assert report.ok and report.anchored and report.checked == 5


def test_a_full_rewrite_with_every_hash_recomputed_is_detected(db, audit):
    fill(audit, 3)
    fill(audit, 2, who=MALLORY, start=T0 + dt.timedelta(days=10))
    rewrite_whole_chain(db, as_admin)
    assert {e.actor for e in audit.query()} == {"admin"}
    report = audit.verify()
    assert not report.ok and report.checked == 5
    assert "does not match its anchor MAC" in report.error and "rewritten in the database" in report.error
    assert report.head_seq == 0


def test_the_same_rewrite_passes_the_hash_chain_alone(db, audit, tmp_path):
    """Why the anchor is needed: checked without the key, the rewritten chain looks intact."""
    fill(audit, 3, who=MALLORY)
    rewrite_whole_chain(db, as_admin)
    keyless = Database.from_url(db.url)
    try:
        report = AuditLog(keyless).verify()
        assert report.ok and not report.anchored
    finally:
        keyless.dispose()


def test_removing_the_heads_mac_is_detected(db, audit):
    fill(audit, 2)
    with db.engine.begin() as conn:
        conn.execute(update(AuditHead).where(AuditHead.id == 1).values(head_mac=None))
    report = audit.verify()
    assert not report.ok and "carries no anchor MAC" in report.error


def test_moving_the_start_of_the_chain_to_drop_old_entries_is_detected(db, audit):
    """A fake purge: the anchor moved past entries someone wanted gone, the head left as it was."""
    fill(audit, 4)
    with db.engine.begin() as conn:
        second = conn.execute(select(AuditEntry).where(AuditEntry.seq == 2)).one()
        conn.execute(delete(AuditEntry).where(AuditEntry.seq <= 2))
        conn.execute(update(AuditHead).where(AuditHead.id == 1).values(anchor_seq=2, anchor_hash=second.hash))
    report = audit.verify()
    assert not report.ok and "does not match its anchor MAC" in report.error


def test_a_retention_purge_moves_the_anchor_and_the_chain_still_verifies(db, audit):
    fill(audit, 4, start=T0 - dt.timedelta(days=4000))
    fill(audit, 2, start=T0)
    result = RetentionPurger(db, RetentionSettings(audit_days=365)).purge(ADMIN, T0 + dt.timedelta(days=3))
    assert result.audit == 4
    report = audit.verify()
    assert report.ok and report.anchored and report.checked == 3  # 2 kept + the purge's own entry


def test_an_append_by_a_process_without_the_key_is_reported(db, audit):
    fill(audit, 2)
    keyless = Database.from_url(db.url)
    try:
        AuditLog(keyless).record(ADMIN, "user.update", "user:x", T0)
    finally:
        keyless.dispose()
    report = audit.verify()
    assert not report.ok and "written without the audit key" in report.error


def test_the_key_file_is_created_0600_and_adopts_the_existing_head(db, key_path):
    fill(AuditLog(db), 3)  # a chain written before anchoring existed
    key = open_anchor(db, key_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600 and sealing.read_key_file(key_path) == key
    report = AuditLog(db).verify()
    assert report.ok and report.anchored and report.checked == 3
    assert open_anchor(db, key_path) == key  # read, not created again


def test_a_missing_key_file_for_an_anchored_chain_stops_with_what_to_do(db, audit, key_path):
    fill(audit, 1)
    key_path.unlink()
    with pytest.raises(KeyFileError, match="is missing, but the audit chain is anchored with a key: restore"):
        open_anchor(db, key_path)
    assert not key_path.exists()


def test_another_key_does_not_verify_the_chain(db, audit, tmp_path):
    fill(audit, 2)
    use_key(db, sealing.new_key())
    report = audit.verify()
    assert not report.ok and "does not match its anchor MAC" in report.error
