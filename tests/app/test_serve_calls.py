"""Whole-service calls: `callrouter serve` with its real pjsua2 workers, SIPp as patients and
secretaries. What a practice's patient and a secretary would live through, checked in the call
records the service wrote."""

from __future__ import annotations

import os
import signal

import pytest

from callrouter.devtools import sipp as scen
from tests.app.conftest import NUMBER
from tests.media.harness import RtpSink, Sipp
from tests.sip.harness import wait_for

pytestmark = pytest.mark.integration


def run_caller(service, tmp_path, name, steps, end="bye", worker=0, caller="+33611223344"):
    sink = RtpSink()
    scenario = scen.caller(tmp_path, name, steps, end=end)
    sipp = Sipp(str(scenario), remote_port=service.worker_ports()[worker], service=NUMBER,
                variables={"rtp_port": str(sink.port), "caller": caller}, workdir=tmp_path, timeout_s=60)
    return sipp, sink


def run_secretary(service, tmp_path, name="secretary", **kw):
    sink = RtpSink()
    scenario = scen.secretary(tmp_path, name, "e2e-test", **kw)
    sipp = Sipp(str(scenario), service=NUMBER, variables={"rtp_port": str(sink.port)}, workdir=tmp_path,
                timeout_s=60, extra=["-p", str(service.secretary_port)])
    return sipp, sink


def sipp_ok(sipp, timeout=90):
    code = sipp.wait(timeout)
    assert code == 0, sipp.errors()


def test_menu_heard_digit_3_queued_bridged_then_patient_hangs_up(service, tmp_path):
    secretary, secretary_rtp = run_secretary(service, tmp_path)
    caller, caller_rtp = run_caller(service, tmp_path, "press3", [("pause", 3000), ("digit", "3"), ("pause", 4000)])
    assert caller_rtp.wait_audible(50) >= 50  # the menu prompt reached the patient
    sipp_ok(caller)
    sipp_ok(secretary)  # it got the offer, answered, and was hung up when the patient left
    assert secretary_rtp.packets, "the bridge carried no audio to the secretary"
    [record] = service.calls(wait_closed=1)
    assert record.outcome == "answered" and record.secretary.startswith("sip:secretary@")
    assert [(a.menu, a.digit) for a in record.ivr_answers] == [("triage", "3")]
    assert record.queue == "general" and record.reason == "rendez-vous"
    assert record.caller == "+33611223344"
    assert "33611223344" not in service.log_tail()  # masked in every log line


def test_secretary_hangs_up_and_the_patient_is_hung_up(service, tmp_path):
    secretary, _ = run_secretary(service, tmp_path, hangup_after_ms=2000)
    caller, _ = run_caller(service, tmp_path, "press3_wait", [("pause", 2000), ("digit", "3")], end="wait_bye")
    sipp_ok(caller)
    sipp_ok(secretary)
    [record] = service.calls(wait_closed=1)
    assert record.outcome == "answered"


def test_no_choice_falls_to_the_queue(service, tmp_path):
    """retries 0, timeout 2 s after the menu prompt: on_timeout sends the call to the queue."""
    secretary, _ = run_secretary(service, tmp_path, hangup_after_ms=500)
    caller, _ = run_caller(service, tmp_path, "silent", [], end="wait_bye")
    sipp_ok(caller)
    sipp_ok(secretary)
    [record] = service.calls(wait_closed=1)
    assert record.outcome == "answered"
    assert [(a.menu, a.digit) for a in record.ivr_answers] == [("triage", "timeout")]


def test_an_invalid_digit_uses_up_the_tries_and_falls_to_the_queue(service, tmp_path):
    """retries 0: a 9 (not an option) ends the menu; its on_timeout sends the call to the queue."""
    secretary, _ = run_secretary(service, tmp_path, hangup_after_ms=500)
    caller, _ = run_caller(service, tmp_path, "press9", [("pause", 1500), ("digit", "9")], end="wait_bye")
    sipp_ok(caller)
    sipp_ok(secretary)
    [record] = service.calls(wait_closed=1)
    assert record.outcome == "answered" and record.queue == "general"
    assert [(a.menu, a.digit) for a in record.ivr_answers] == [("triage", "9"), ("triage", "timeout")]


def test_patient_hanging_up_while_queued_is_abandoned(service, tmp_path):
    caller, _ = run_caller(service, tmp_path, "press3_leave", [("pause", 1500), ("digit", "3"), ("pause", 1500)])
    sipp_ok(caller)  # nobody listens on the secretary's port: the offer rings out
    [record] = service.calls(wait_closed=1)
    assert record.outcome == "abandoned" and record.queued_at is not None


def test_voicemail_keeps_the_message(service, tmp_path):
    caller, _ = run_caller(service, tmp_path, "press4_message",
                           [("pause", 1500), ("digit", "4"), ("pause", 6000), ("audio", 5000), ("digit", "#")],
                           end="wait_bye")  # after '#', the service says goodbye and hangs up
    sipp_ok(caller)
    [record] = service.calls(wait_closed=1)
    assert record.outcome == "voicemail"
    # The message is sealed into the media vault (docs/recording.md): no plain file is left.
    assert wait_for(lambda: not list((tmp_path / "voicemail" / "e2e-test").glob("*.wav")), timeout=10)
    files = list((tmp_path / "var" / "vault").glob("*.enc"))
    assert len(files) == 1 and files[0].stat().st_size > 8000  # more than half a second of 8 kHz audio


def test_worker_killed_mid_call_closes_its_call_and_the_pool_recovers(service, tmp_path):
    caller, _ = run_caller(service, tmp_path, "waits", [], end="wait_bye", worker=0)
    service.wait_metric("callrouter_active_calls", lambda v: v == 1)
    before = service.worker_pids()
    os.kill(before["w0"], signal.SIGKILL)
    caller.kill()  # its worker is gone: nothing will ever answer it
    [record] = service.calls(wait_closed=1)
    assert (record.outcome, record.cause) == ("failed", "worker_lost")
    service.wait_metric("callrouter_media_worker_restarts_total", lambda v: v == 1)
    service.wait_metric("callrouter_media_workers", lambda v: v == 2)
    assert service.worker_pids()["w0"] != before["w0"]
    assert service.worker_pids()["w1"] == before["w1"]  # the other worker was untouched
    assert service.metrics()["callrouter_active_calls"] == 0
    secretary, _ = run_secretary(service, tmp_path, name="secretary2", hangup_after_ms=500)
    again, _ = run_caller(service, tmp_path, "after_restart", [("pause", 1500), ("digit", "3")], end="wait_bye", worker=0)
    sipp_ok(again)
    sipp_ok(secretary)


def test_vital_choice_tells_the_patient_to_dial_15_and_alerts_the_practitioner(tmp_path, prompts_built):
    """The whole service with escalation on: a patient presses 1, hears the call-15 message, the call
    ends; the vital tier's SMS to the practitioner leaves through the outbox (a development channel)."""
    import json
    import time

    from callrouter.devtools.serve import ServeProcess, base_config
    from tests.app.conftest import DIALPLAN
    from tests.factories import REPO

    (tmp_path / "dialplans").mkdir()
    (tmp_path / "dialplans" / "e2e.yaml").write_text(DIALPLAN.format(number=NUMBER))
    outbox = tmp_path / "outbox.jsonl"
    config = base_config(tmp_path, tmp_path / "dialplans", REPO / "prompts", workers=1)
    config["escalation"] = {"enabled": True, "ack_secret": "test-secret", "outbox_file": str(outbox)}
    svc = ServeProcess(tmp_path, config).start()
    try:
        caller, _ = run_caller(svc, tmp_path, "vital", [("pause", 1500), ("digit", "1")], end="wait_bye",
                               caller="+33633445566")
        sipp_ok(caller)  # the service said "dial 15" and hung up
        [record] = svc.calls(wait_closed=1)
        assert record.outcome == "announced" and "tier vital" in record.reason
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not outbox.exists():
            time.sleep(0.2)
        [sms] = [json.loads(line) for line in outbox.read_text().splitlines()]
        assert sms["channel"] == "sms" and sms["to"] == "+33600000001"
        assert "06 33 44 55 66" in sms["text"] or "+33633445566" in sms["text"]  # the number to call back
    finally:
        assert svc.stop() == []
