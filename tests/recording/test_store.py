"""Recordings, their notes, on-demand requests and voicemail messages in the real databases (SQLite
and PostgreSQL): each listening audited, a refusal deleting the recording, and the daily purge
removing rows and files at their limits (an injected clock), the purge audited."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from sqlalchemy import select

from callrouter.auth.sealing import new_key
from callrouter.config import RetentionSettings
from callrouter.domain.recording import NOT_SELECTED, RECORDED, REFUSED, UnknownRecording
from callrouter.ports import Actor
from callrouter.recording.cipher import MediaKey
from callrouter.recording.vault import MediaRetention, MediaVault
from callrouter.store import recordings as rec_store
from callrouter.store import voicemails as vm_store
from callrouter.store.audit import AuditLog
from callrouter.store.calls import CallRepository
from callrouter.store.models import AuditEntry, RecordingNote
from callrouter.store.recordings import RecordingRepository
from callrouter.store.retention import RetentionPurger
from callrouter.store.tasks import TaskRepository
from callrouter.store.voicemails import VoicemailRepository

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
SUP = Actor("sup", "127.0.0.1")


def entries(db, action: str) -> list[AuditEntry]:
    with db.transaction() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)))


def a_call(db, call_id: str, practice: str = "cab") -> None:
    CallRepository(db, node="n1").open_call(call_id, practice, "+33100000001", "+33612345678", T0, "w0")


def a_recording(db, vault: MediaVault, tmp_path, call_id: str, at: dt.datetime = T0, practice: str = "cab") -> int:
    plain = tmp_path / f"{call_id}.wav"
    plain.write_bytes(b"RIFF" + os.urandom(1000))
    name, sealed = vault.seal(plain)
    return RecordingRepository(db).add(call_id, practice, "alice", name, vault.key.key_id, sealed.sha256,
                                       sealed.size, 2, 12.5, at, at, "sampled: drawn")


@pytest.fixture
def vault(tmp_path):
    return MediaVault(tmp_path / "vault", MediaKey(new_key()), legacy_root=tmp_path / "voicemail")


def test_the_call_record_says_what_happened_and_a_refusal_deletes_the_recording(db, vault, tmp_path):
    repo = RecordingRepository(db)
    a_call(db, "c1")
    repo.set_status("c1", NOT_SELECTED, "sampled: not drawn", T0)
    repo.set_status("c1", RECORDED, "sampled: drawn", T0)
    assert repo.status_of("c1") == (RECORDED, "sampled: drawn")
    rid = a_recording(db, vault, tmp_path, "c1")
    name = repo.get(rid).file
    assert vault.exists(name)
    removed = repo.refuse("c1", Actor("alice", "127.0.0.1"), T0, "le patient refuse (alice)")
    assert removed == name and repo.status_of("c1") == (REFUSED, "le patient refuse (alice)")
    with pytest.raises(UnknownRecording):
        repo.get(rid)
    assert [e.target for e in entries(db, "recording.refused")] == ["call:c1"]
    repo.set_status("c1", RECORDED, "a write of the bridge coming late", T0)
    assert repo.status_of("c1")[0] == REFUSED
    # A recording finished after the refusal is not stored.
    assert repo.add("c1", "cab", "alice", "x" * 32 + ".enc", "k", "0" * 64, 1, 2, 1.0, T0, T0) is None


def test_every_listening_is_audited_and_another_practice_sees_nothing(db, vault, tmp_path):
    repo = RecordingRepository(db)
    a_call(db, "c2")
    rid = a_recording(db, vault, tmp_path, "c2")
    view = repo.access(rid, frozenset({"cab"}), SUP, T0, "listen")
    assert vault.read(view.file, view.sha256).startswith(b"RIFF")
    repo.access(rid, None, SUP, T0, "download")
    with pytest.raises(UnknownRecording):
        repo.access(rid, frozenset({"other"}), SUP, T0, "listen")
    assert [e.action for e in entries(db, "recording.listen") + entries(db, "recording.download")] == \
        ["recording.listen", "recording.download"]
    listed = repo.read_list("cab", None, None, 10, SUP, T0, {"practice": "cab"})
    assert [v.id for v in listed] == [rid] and entries(db, "recordings.read")[0].target == "practice:cab"
    assert "file" not in listed[0].to_json()


def test_a_supervisors_note_per_recording(db, vault, tmp_path):
    repo = RecordingRepository(db)
    a_call(db, "c3")
    rid = a_recording(db, vault, tmp_path, "c3")
    repo.put_note(rid, "sup", "Accueil chaleureux, reformulation à travailler.", 3, T0, SUP)
    note = repo.put_note(rid, "sup2", "Bon appel.", 4, T0 + dt.timedelta(hours=1), SUP)
    assert (note.author, note.score, note.text) == ("sup2", 4, "Bon appel.")
    assert repo.get(rid).note.id == note.id
    assert len(entries(db, "recording.note")) == 2


def test_on_demand_requests_last_until_their_end_or_a_stop(db):
    repo = RecordingRepository(db)
    d = repo.add_demand("alice", "cab", T0, T0 + dt.timedelta(hours=2), SUP, T0)
    assert [x.id for x in repo.active_demands(T0 + dt.timedelta(hours=1))] == [d.id]
    assert repo.active_demands(T0 + dt.timedelta(hours=2)) == []
    stopped = repo.stop_demand(d.id, SUP, T0 + dt.timedelta(minutes=30))
    assert stopped.ends_at == T0 + dt.timedelta(minutes=30) and repo.active_demands(T0 + dt.timedelta(minutes=31)) == []
    assert [e.action for e in entries(db, "recording.demand") + entries(db, "recording.demand_stopped")] == \
        ["recording.demand", "recording.demand_stopped"]


def test_voicemail_messages_are_listed_with_their_task_and_each_listening_audited(db, vault, tmp_path):
    tasks = TaskRepository(db)
    task = tasks.create("cab", "+33612345678", "voicemail", T0, T0 + dt.timedelta(hours=4), task_id="t1", call_id="c4")
    plain = tmp_path / "m.wav"
    plain.write_bytes(b"RIFF" + os.urandom(500))
    name, sealed = vault.seal(plain)
    assert not plain.exists()
    repo = VoicemailRepository(db)
    mid = repo.add("c4", "cab", task.id, name, vault.key.key_id, sealed.sha256, sealed.size, 7.5, False, T0, T0, True)
    (view,) = repo.read_list("cab", 50, SUP, T0, {"practice": "cab"})
    assert (view.id, view.task_id, view.number, view.task_state) == (mid, "t1", "+33612345678", "open")
    assert repo.read_list("other", 50, SUP, T0, {}) == []
    heard = repo.access(mid, frozenset({"cab"}), SUP, T0)
    assert vault.read(heard.file, heard.sha256).startswith(b"RIFF")
    with pytest.raises(UnknownRecording):
        repo.access(mid, frozenset({"other"}), SUP, T0)
    assert len(entries(db, "voicemail.listen")) == 1
    assert [v.id for v in repo.claim_notifications()] == [mid]
    assert repo.claim_notifications() == []  # claimed once
    repo.notified(mid, True, T0)


def test_the_purge_removes_rows_and_files_at_their_limits_and_is_audited(db, vault, tmp_path):
    recs, vms = RecordingRepository(db), VoicemailRepository(db)
    for call_id in ("old", "new"):
        a_call(db, call_id)
    old = a_recording(db, vault, tmp_path, "old", at=T0)
    new = a_recording(db, vault, tmp_path, "new", at=T0 + dt.timedelta(days=100))
    recs.put_note(old, "sup", "Évaluation du premier appel.", 4, T0, SUP)
    old_file, new_file = recs.get(old).file, recs.get(new).file
    plain = tmp_path / "vm.wav"
    plain.write_bytes(b"RIFF" + bytes(100))
    vm_name, sealed = vault.seal(plain)
    vms.add("v", "cab", None, vm_name, vault.key.key_id, sealed.sha256, sealed.size, 3.0, False, T0, T0, False)
    media = MediaRetention(vault, 183, 365, 90, rec_store.purge, vm_store.purge)
    purger = RetentionPurger(db, RetentionSettings(call_records_days=None, recordings_days=None, audit_days=None,
                                                   state_history_days=None), media=[media])

    result = purger.purge(SUP, T0 + dt.timedelta(days=182))  # before any limit but the messages' 90 days
    assert (result.media["call_recordings"], result.media["voicemails"]) == (0, 1)
    assert not vault.exists(vm_name) and vault.exists(old_file)

    result = purger.purge(SUP, T0 + dt.timedelta(days=184))  # the first recording is past six months
    assert result.media["call_recordings"] == 1 and result.media["audio_files"] == 1
    assert not vault.exists(old_file) and vault.exists(new_file)
    with pytest.raises(UnknownRecording):
        recs.get(old)
    with db.transaction() as s:  # its note outlives it, unlinked
        (note,) = s.scalars(select(RecordingNote))
        assert note.recording_id is None and note.call_id == "old"

    result = purger.purge(SUP, T0 + dt.timedelta(days=366))  # the note is past a year
    assert result.media["recording_notes"] == 1
    with db.transaction() as s:
        assert list(s.scalars(select(RecordingNote))) == []
    audits = entries(db, "retention.purge")
    assert [a.details for a in audits if '"call_recordings":1' in a.details] and len(audits) == 3
    assert AuditLog(db).verify().ok


def test_a_purge_that_fails_removes_no_file(db, vault, tmp_path):
    recs = RecordingRepository(db)
    a_call(db, "c5")
    rid = a_recording(db, vault, tmp_path, "c5")
    name = recs.get(rid).file

    def broken(session, now, days):
        raise RuntimeError("the purge's transaction fails after the recordings' step")

    purger = RetentionPurger(db, RetentionSettings(), media=[MediaRetention(vault, 1, 1, 1, rec_store.purge, broken)])
    with pytest.raises(RuntimeError):
        purger.purge(SUP, T0 + dt.timedelta(days=30))
    assert vault.exists(name) and recs.get(rid).file == name


def test_the_vault_removes_only_its_own_files_and_sweeps_orphans(vault, tmp_path):
    outside = tmp_path / "precious.wav"
    outside.write_bytes(b"keep me")
    assert vault.remove([str(outside), "../precious.wav", "x.enc"]) == 0 and outside.exists()
    legacy = tmp_path / "voicemail" / "cab" / "c.wav"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"RIFF")
    assert vault.remove([str(legacy)]) == 1 and not legacy.exists()
    plain = tmp_path / "p.wav"
    plain.write_bytes(b"RIFF")
    kept, _ = vault.seal(plain, keep_plain=True)
    orphan, _ = vault.seal(plain)
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "left.wav").write_bytes(b"RIFF")
    assert vault.sweep({kept}, spool) == 0  # too recent: may be a recording finishing now
    assert vault.sweep({kept}, spool, now=__import__("time").time() + 7200) == 2
    assert vault.exists(kept) and not vault.exists(orphan) and not (spool / "left.wav").exists()
