"""Call recording on the call side: the consent message before the queue, the refuse key, the bridged
call recorded by its worker and sealed into the vault, « le patient refuse », on-demand requests,
and voicemail messages sealed as they are left. Real store, recorder and vault; faked media."""

from __future__ import annotations

import datetime as dt

import pytest

from callrouter.domain.recording import NOT_SELECTED, RECORDED, REFUSED, FAILED
from callrouter.media import protocol as p
from callrouter.ports import Actor
from callrouter.store.testing import fresh_database
from tests.recording.call_harness import SECRETARY, make_harness, tone_file
from tests.recording.tones import CALLER_HZ, SECRETARY_HZ, channels, tone_frames

ALWAYS = "mode: sampled\npercent: 100"
ALICE = Actor("alice", "127.0.0.1")


@pytest.fixture
def make(tmp_path):
    made = []

    def build(recording: str | None = ALWAYS):
        ctx = fresh_database("sqlite", tmp_path / f"db{len(made)}")
        (tmp_path / f"db{len(made)}").mkdir(exist_ok=True)
        db = ctx.__enter__()
        h = make_harness(tmp_path / f"h{len(made)}", recording, db)
        made.append((h, ctx))
        return h

    yield build
    for h, ctx in made:
        h.recorder.stop()
        ctx.__exit__(None, None, None)


def consent_then_queue(h, leg):
    dials = len(h.media.commands(p.Dial))
    h.to_queue(leg)
    assert h.media.prompts(leg)[-1] == "recording_consent"
    assert len(h.media.commands(p.Dial)) == dials  # not in the queue while the message plays
    h.played(leg)
    h.clock.advance(3)  # the refuse key is still heard 3 s after the message


def test_a_selected_call_hears_the_consent_message_then_its_conversation_is_recorded(make):
    h = make()
    leg = h.incoming()
    call_id = h.call_id(leg)
    consent_then_queue(h, leg)
    secretary_leg = h.answer()
    command = h.media.last(p.RecordCall)
    assert (command.leg, command.other) == (leg, secretary_leg)
    assert str(h.spool) in command.path and "+336" not in command.path  # the spool, named by ids only
    h.finish_recording(command, seconds=2.5)
    h.flush()
    assert h.store.status_of(call_id)[0] == RECORDED
    view = h.store.of_call(call_id)
    assert (view.channels, view.secretary, view.duration_seconds) == (2, SECRETARY, 2.5)
    audio = h.vault.read(view.file, view.sha256)
    assert list(h.spool.iterdir()) == []  # the plain sides are gone
    (h.spool / "x.wav").write_bytes(audio)
    n, _, (left, right) = channels(h.spool / "x.wav")
    assert n == 2 and tone_frames(left, CALLER_HZ) > 100 and tone_frames(right, SECRETARY_HZ) > 100


def test_the_refuse_key_during_the_message_means_no_recording(make):
    h = make()
    leg = h.incoming()
    call_id = h.call_id(leg)
    h.to_queue(leg)
    h.digit(leg, "9")
    assert h.media.prompts(leg)[-1] == "recording_refused"
    h.played(leg)
    h.answer()
    assert h.media.commands(p.RecordCall) == []
    h.flush()
    assert h.store.status_of(call_id)[0] == REFUSED


def test_other_keys_during_the_message_do_nothing_and_the_key_still_counts_in_the_queue(make):
    h = make()
    leg = h.incoming()
    call_id = h.call_id(leg)
    h.to_queue(leg)
    h.digit(leg, "3")
    assert h.media.prompts(leg)[-1] == "recording_consent"
    h.played(leg)
    h.clock.advance(3)
    h.digit(leg, "9")  # ringing her already: still refused
    h.answer()
    assert h.media.commands(p.RecordCall) == []
    h.flush()
    assert h.store.status_of(call_id)[0] == REFUSED


def test_le_patient_refuse_mid_call_stops_and_deletes_the_recording(make):
    h = make()
    leg = h.incoming()
    call_id = h.call_id(leg)
    consent_then_queue(h, leg)
    h.answer()
    command = h.media.last(p.RecordCall)
    assert h.hooks.refuse(call_id, ALICE) == "stopped"
    assert h.media.last(p.StopCallRecording).leg == leg
    h.store.refuse(call_id, ALICE, h.hooks.now(), "le patient refuse (alice)")
    h.finish_recording(command, reason="stopped")
    h.flush()
    assert h.store.of_call(call_id) is None and list(h.spool.iterdir()) == []
    assert list(h.vault.root.iterdir()) == []
    assert h.store.status_of(call_id) == (REFUSED, "le patient refuse (alice)")


def test_a_practice_that_does_not_record_asks_nobody(make):
    h = make("mode: off")
    leg = h.incoming()
    call_id = h.call_id(leg)
    h.to_queue(leg)
    assert "recording_consent" not in h.media.prompts(leg)
    h.answer()
    assert h.media.commands(p.RecordCall) == []
    h.flush()
    assert h.store.status_of(call_id) == (NOT_SELECTED, "recording off")


def test_on_demand_records_only_while_a_request_covers_the_secretary(make):
    h = make("mode: on_demand")
    leg = h.incoming()
    call_id = h.call_id(leg)
    consent_then_queue(h, leg)
    h.answer()
    assert h.media.commands(p.RecordCall) == []
    h.flush()
    assert h.store.status_of(call_id)[0] == NOT_SELECTED

    now = h.hooks.now()
    h.store.add_demand(SECRETARY, None, now, now + dt.timedelta(hours=1), ALICE, now)
    h.demands.refresh()
    h.legs.media_event("w0", p.LegEnded(leg, 200, "", "remote"))
    leg2 = h.incoming("+33612345679")
    consent_then_queue(h, leg2)
    h.clock.advance(60)  # her wrap-up
    assert h.media.last(p.Dial).headers["X-Callrouter-Call-Id"] == h.call_id(leg2)
    h.answer()
    assert h.media.last(p.RecordCall).leg == leg2


def test_a_recording_whose_end_never_comes_is_marked_failed(make):
    h = make()
    leg = h.incoming()
    call_id = h.call_id(leg)
    consent_then_queue(h, leg)
    h.answer()
    h.legs.media_event("w0", p.LegEnded(leg, 200, "", "remote"))
    h.clock.advance(31)
    h.flush()
    assert h.store.status_of(call_id)[0] == FAILED and h.hooks.calls == {}


def test_a_voicemail_message_is_sealed_as_it_is_left(make, tmp_path):
    h = make("mode: off\nvoicemail_email: cab@example.fr")
    h.clock.advance(12 * 3600)  # 21:00 Paris: closed, the closing message and no menu
    leg = h.incoming()
    call_id = h.call_id(leg)
    session = h.controller.sessions[leg]
    plain = h.spool.parent / "voicemail" / "m.wav"
    plain.parent.mkdir(parents=True, exist_ok=True)
    tone_file(plain, 440, 3)
    session.recording_started = h.hooks.now()
    h.controller.flow.store_message(session, p.RecordingFinished(leg, str(plain), 3.0, "digit"))
    h.flush()
    assert not plain.exists()
    (message,) = h.voicemails.read_list("test-practice", 10, ALICE, h.hooks.now(), {})
    assert message.call_id == call_id and message.task_id is not None and message.number == "+33612345678"
    assert h.vault.read(message.file, message.sha256)[:4] == b"RIFF"
    assert [v.id for v in h.voicemails.claim_notifications()] == [message.id]  # its dialplan asks for an e-mail
