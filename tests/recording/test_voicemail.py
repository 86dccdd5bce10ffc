"""Voicemail messages: the plain files of earlier versions moved by migration 0014 and sealed at start,
the size limit, and the practice's e-mail through a real SMTP server with STARTTLS, without the
caller's number, sent once."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import wave
from pathlib import Path

from sqlalchemy import select, text

from callrouter.auth.sealing import new_key
from callrouter.escalation.settings import EscalationSettings
from callrouter.ports import Actor
from callrouter.recording.audio import cut_to_size, duration_of
from callrouter.recording.cipher import MediaKey
from callrouter.recording.vault import MediaVault
from callrouter.recording.voicemail import Messages, VoicemailMail
from callrouter.store.models import AuditEntry
from callrouter.store.testing import fresh_database
from callrouter.store.voicemails import VoicemailRepository
from tests.factories import dialplan_text, load_one
from tests.recording.call_harness import tone_file
from tests.reports.conftest import start_smtp

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


def test_messages_stored_in_clear_are_moved_by_the_migration_then_sealed_at_start(db, tmp_path):
    """A database at 0013 with a message in the old table: after the upgrade it is a message to
    seal; sealing it encrypts the file into the vault, removes the plain file, and is audited."""
    kind = "postgresql" if db.engine.dialect.name == "postgresql" else "sqlite"
    (tmp_path / "old").mkdir()
    with fresh_database(kind, tmp_path / "old", migrate=False) as old:
        old.upgrade("0013")
        (tmp_path / "voicemail" / "cab").mkdir(parents=True)
        plain = tone_file(tmp_path / "voicemail" / "cab" / "c1.wav", 440, 2)
        with old.engine.begin() as c:
            c.execute(text("INSERT INTO calls (id, practice, number, node, arrived_at) "
                           "VALUES ('c1', 'cab', '+33100000001', 'n1', :t)"), {"t": T0.replace(tzinfo=None)})
            c.execute(text("INSERT INTO recordings (call_id, location, started_at, duration_seconds, created_at) "
                           "VALUES ('c1', :p, :t, 2.0, :t)"), {"p": str(plain), "t": T0.replace(tzinfo=None)})
        old.upgrade()
        repo = VoicemailRepository(old)
        assert [(call, path) for _, path, call in repo.legacy()] == [("c1", str(plain))]
        with old.engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM recordings")).scalar() == 0
        vault = MediaVault(tmp_path / "vault", MediaKey(new_key()), legacy_root=tmp_path / "voicemail")
        messages = Messages(lambda fn, *a: fn(*a), repo, vault, 1_000_000, lambda: T0)
        assert messages.seal_legacy() == 1 and messages.seal_legacy() == 0
        assert not plain.exists()
        (view,) = repo.read_list("cab", 10, Actor("test", "cli"), T0, {})
        assert view.practice == "cab" and view.file is not None
        assert vault.read(view.file, view.sha256)[:4] == b"RIFF"
        with old.transaction() as s:
            assert [e.action for e in s.scalars(select(AuditEntry).where(AuditEntry.action.like("voicemail.%")))] == \
                ["voicemail.sealed"]


def test_a_message_longer_than_the_size_limit_is_cut_keeping_its_beginning(tmp_path):
    path = tone_file(tmp_path / "long.wav", 440, 10)
    assert not cut_to_size(path, 10 * 16000 + 44)
    assert cut_to_size(path, 3 * 16000 + 44)
    assert path.stat().st_size <= 3 * 16000 + 44 and duration_of(path) == 3.0
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate()) == (1, 8000)


def test_the_practice_is_e_mailed_once_per_message_without_the_callers_number(db, tmp_path):
    mailbox, controller = start_smtp(tmp_path)
    try:
        plan = load_one(tmp_path, dialplan_text(extra="recording:\n  voicemail_email: [cab@example.fr]\n"))
        repo = VoicemailRepository(db)
        repo.add("c9", plan.practice, None, "a" * 32 + ".enc", "k", "0" * 64, 100, 42.0, False, T0, T0, True)
        repo.add("c10", plan.practice, None, "b" * 32 + ".enc", "k", "1" * 64, 100, 3.0, False, T0, T0, False)
        settings = EscalationSettings(smtp_host="127.0.0.1", smtp_port=mailbox.port, smtp_cafile=mailbox.cert,
                                      smtp_from="secretariat@example.fr")
        mail = VoicemailMail(repo, lambda: {plan.practice: plan}, settings, tmp_path / "out", "https://console.example/")
        assert mail.send_due(T0) == 1 and mail.send_due(T0) == 0
    finally:
        controller.stop()
    (envelope,) = mailbox.envelopes
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert envelope.rcpt_tos == ["cab@example.fr"]
    assert message["Subject"] == f"Nouveau message vocal — {plan.name}"
    body = message.get_content()
    assert "0 min 42 s" in body and "02/03/2026 à 10:00" in body and "https://console.example/" in body
    assert "+33" not in envelope.content.decode("utf-8", "replace")


def test_an_unknown_file_leaves_nothing_behind(tmp_path):
    """A message whose plain file is gone (a worker that died) stores nothing and fails nothing."""
    stored = []
    vault = MediaVault(tmp_path / "vault", MediaKey(new_key()))

    class Store:
        def add(self, *args):
            stored.append(args)

    Messages(lambda fn, *a: fn(*a), Store(), vault, 1_000_000, lambda: T0).left(
        "c1", "cab", Path(tmp_path / "missing.wav"), T0, 3.0, None, False)
    assert stored == [] and os.listdir(vault.root) == []
