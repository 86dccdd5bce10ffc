"""Alert calls through the whole service: `callrouter serve` with its real pjsua2 workers, a patient
(SIPp) who chooses the vital tier, and the practitioner's phone (a SIPp UAS behind the outbound
trunk on loopback). Only a key acknowledges; otherwise the chain goes on to its SMS (outbox file)."""

from __future__ import annotations

import json
import struct
import time

import pytest

from callrouter.devtools import sipp as scen
from callrouter.devtools.serve import ServeProcess, base_config, free_udp_port
from tests.app.conftest import NUMBER
from tests.factories import REPO
from tests.media.harness import RtpSink, Sipp

pytestmark = pytest.mark.integration

PATIENT = "+33633445566"
DOCTOR = "+33600000001"
TONE = 1300  # Hz: what the practitioner's phone "says" once connected

DIALPLAN = """\
practice: alert-test
name: Cabinet des Tilleuls
timezone: Europe/Paris
numbers: ["{number}"]
hours:
  daily: ["00:00-24:00"]
queues:
  general: {{label: Secrétariat, wrap_up: 1s, announce_interval: 60s}}
ivr:
  triage:
    prompt: triage_menu
    timeout: 4s
    retries: 0
    on_timeout: {{queue: general}}
    options:
      "1": {{reason: urgence vitale, tier: vital}}
      "2": {{reason: urgent, tier: urgent, queue: general}}
routes:
  open: {{ivr: triage}}
  closed: {{ivr: triage}}
  holiday: {{ivr: triage}}
escalation:
  tiers:
    vital:
      announce: call_15
      steps:
        - {{call: dr-a, wait: 3s}}
        - {{sms: dr-a}}
    urgent:
      steps:
        - {{call: dr-a, wait: 3s}}
        - {{sms: dr-a}}
practitioners:
  - {{id: dr-a, name: Dr A, phone: "{doctor}"}}
"""


@pytest.fixture
def alert_service(tmp_path, prompts_built):
    (tmp_path / "dialplans").mkdir()
    (tmp_path / "dialplans" / "alert.yaml").write_text(DIALPLAN.format(number=NUMBER, doctor=DOCTOR))
    trunk_port = free_udp_port()
    nobody = free_udp_port()  # the secretary's phone: nobody answers, the patient keeps waiting
    config = base_config(tmp_path, tmp_path / "dialplans", REPO / "prompts", workers=1,
                         agents={"*": [f"sip:secretary@127.0.0.1:{nobody}"]})
    config["controller"]["outbound_trunk"] = f"127.0.0.1:{trunk_port}"
    config["controller"]["ring_timeout_s"] = 30.0
    config["escalation"] = {"enabled": True, "ack_secret": "test-secret", "outbox_file": str(tmp_path / "outbox.jsonl"),
                            "voice_calls": True, "call_ring_timeout_seconds": 10, "call_digit_timeout_seconds": 3,
                            "call_repeats": 1}
    svc = ServeProcess(tmp_path, config).start()
    svc.trunk_port = trunk_port
    svc.outbox = tmp_path / "outbox.jsonl"
    try:
        yield svc
    finally:
        assert svc.stop() == []


def practitioner(svc, tmp_path, name, steps, **kw):
    sink = RtpSink()
    scenario = scen.practitioner_phone(tmp_path, name, steps, **kw)
    run = Sipp(str(scenario), service=DOCTOR, variables={"rtp_port": str(sink.port)}, workdir=tmp_path,
               timeout_s=60, extra=["-p", str(svc.trunk_port)])
    return run, sink


def patient(svc, tmp_path, name, steps, end="wait_bye"):
    sink = RtpSink()
    scenario = scen.caller(tmp_path, name, steps, end=end)
    run = Sipp(str(scenario), remote_port=svc.worker_ports()[0], service=NUMBER,
               variables={"rtp_port": str(sink.port), "caller": PATIENT}, workdir=tmp_path, timeout_s=60)
    return run, sink


def sipp_ok(run, timeout=90):
    code = run.wait(timeout)
    assert code == 0, run.errors()


def escalation(svc, done, timeout=40):
    """The (only) escalation as stored, once `done(view)` holds."""
    from callrouter.store.db import Database
    from callrouter.store.escalations import EscalationQuery, EscalationRepository

    db = Database.from_url(svc.db_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            views = EscalationRepository(db).query(EscalationQuery())
            if (views and done(views[0])) or time.monotonic() > deadline:
                assert views, "no escalation started"
                return views[0]
            time.sleep(0.3)
    finally:
        db.dispose()


def outbox(svc) -> list[dict]:
    return [json.loads(line) for line in svc.outbox.read_text().splitlines()] if svc.outbox.exists() else []


def test_pressing_1_on_the_alert_call_acknowledges_and_stops_the_chain(alert_service, tmp_path):
    svc = alert_service
    doctor, doctor_rtp = practitioner(svc, tmp_path, "doctor_press1", [("pause", 3000), ("digit", "1")])
    caller, _ = patient(svc, tmp_path, "vital", [("pause", 1500), ("digit", "1")])
    sipp_ok(caller)  # "dial 15", then the service hangs up on the patient
    sipp_ok(doctor)  # rang, answered, heard the message, pressed 1, was thanked and hung up
    assert doctor_rtp.audible() > 50, "the practitioner heard nothing"
    view = escalation(svc, lambda v: v.acknowledged_at is not None)
    assert (view.outcome, view.acknowledged_via, view.acknowledged_by) == ("acknowledged", "call", "dr-a")
    assert [(s.channel, s.state) for s in view.steps] == [("call", "delivered")]
    time.sleep(4)  # past the step's wait: no SMS goes out
    assert outbox(svc) == []
    assert escalation(svc, lambda v: True).steps[0].state == "delivered"
    log = svc.log_tail(200000)
    assert "33600000001" not in log and "33633445566" not in log
    assert svc.metrics()['callrouter_escalations_acknowledged_total{practice="alert-test",tier="vital"}'] == 1


def test_an_alert_call_hung_up_without_a_key_is_no_acknowledgement_and_the_sms_follows(alert_service, tmp_path):
    svc = alert_service
    doctor, doctor_rtp = practitioner(svc, tmp_path, "doctor_hangs_up", [("pause", 2500)], end="bye")
    caller, _ = patient(svc, tmp_path, "vital2", [("pause", 1500), ("digit", "1")])
    sipp_ok(caller)
    sipp_ok(doctor)
    view = escalation(svc, lambda v: len(v.steps) == 2)
    assert view.acknowledged_at is None
    # Answered and hung up without a key: it left, but no person was known to be reached.
    assert [(s.channel, s.state) for s in view.steps] == [("call", "sent"), ("sms", "sent")]
    assert view.steps[0].outcome == "no_key_pressed"
    [sms] = outbox(svc)
    assert sms["channel"] == "sms" and sms["to"] == DOCTOR and "06 33 44 55 66" in sms["text"]
    gap = (view.steps[1].created_at - view.steps[0].sent_at).total_seconds()
    assert gap >= 2.5  # the call step's wait (3 s) ran from the end of the call


def test_a_busy_practitioner_is_no_acknowledgement_and_the_sms_follows(alert_service, tmp_path):
    svc = alert_service
    doctor, _ = practitioner(svc, tmp_path, "doctor_busy", [], answer=False, refuse_code=486)
    caller, _ = patient(svc, tmp_path, "vital3", [("pause", 1500), ("digit", "1")])
    sipp_ok(caller)
    sipp_ok(doctor)
    view = escalation(svc, lambda v: len(v.steps) == 2)
    assert [(s.channel, s.state) for s in view.steps] == [("call", "sent"), ("sms", "sent")]
    assert view.steps[0].provider_id.endswith("/busy")
    assert view.acknowledged_at is None and len(outbox(svc)) == 1


def send_digit(sink, digit: str, payload_type: int = 101) -> None:
    """The patient's phone sends an RFC 4733 digit from its own RTP socket (SIPp would send it from
    another port, and the worker, following where RTP comes from, would stop sending to `sink`)."""
    deadline = time.monotonic() + 20
    while not sink.sources and time.monotonic() < deadline:
        time.sleep(0.05)
    [worker_rtp] = list(sink.sources)
    ssrc, stamp = 0x1234ABCD, 160 * 50
    for i in range(8):
        end = i >= 5
        payload = struct.pack("!BBH", int(digit), (0x80 if end else 0) | 10, 160 * (i + 1))
        marker = 0x80 if i == 0 else 0
        sink.sock.sendto(struct.pack("!BBHII", 0x80, marker | payload_type, 1000 + i, stamp, ssrc) + payload,
                         worker_rtp)
        time.sleep(0.02)


def test_pressing_2_connects_the_practitioner_to_the_patient_still_waiting(alert_service, tmp_path):
    """The urgent tier keeps the patient in line (the secretary does not answer); the practitioner
    presses 2 and is bridged with the patient's call on its worker: the patient hears the
    practitioner's phone."""
    svc = alert_service
    doctor, doctor_rtp = practitioner(svc, tmp_path, "doctor_press2",
                                      [("pause", 2500), ("digit", "2"), ("pause", 6000), ("tone", (TONE, 3000))])
    caller, caller_rtp = patient(svc, tmp_path, "urgent_waits", [("pause", 20000)], end="bye")
    time.sleep(1.5)
    send_digit(caller_rtp, "2")  # urgent: the chain starts, the patient waits in line
    sipp_ok(caller)  # the patient hangs up after 20 s: the practitioner is hung up too
    sipp_ok(doctor)
    view = escalation(svc, lambda v: v.acknowledged_at is not None)
    assert (view.acknowledged_via, view.tier) == ("call", "urgent")
    assert view.steps[0].provider_id.endswith("/connected")
    # The practitioner's tone crossed the bridge: the patient's phone got more than a second of it.
    assert scen.tone_packets([pl for pt, pl in caller_rtp.packets if pt == 8], TONE) > 50
    [record] = svc.calls(wait_closed=1)
    assert record.outcome == "answered"
    assert outbox(svc) == []


def test_pressing_2_after_the_patient_left_calls_the_patient_back_and_connects_them(alert_service, tmp_path):
    """The vital tier: the patient hangs up while told to dial 15. The practitioner presses 2: the
    service calls the patient back through the trunk, from the practitioner's worker, and bridges
    them: the patient's phone hears the practitioner's."""
    svc = alert_service
    sink = RtpSink()
    scenario = scen.practitioner_and_patient_phones(
        tmp_path, "both_phones", PATIENT, [("pause", 2500), ("digit", "2"), ("pause", 12000), ("tone", (TONE, 3000))],
        patient_hangup_after_ms=14000)
    phones = Sipp(str(scenario), service=DOCTOR, calls=2, variables={"rtp_port": str(sink.port)}, workdir=tmp_path,
                  timeout_s=80, extra=["-p", str(svc.trunk_port)])
    caller, _ = patient(svc, tmp_path, "vital_then_gone", [("pause", 1500), ("digit", "1"), ("pause", 500)], end="bye")
    sipp_ok(caller)
    sipp_ok(phones, timeout=120)  # two calls: the practitioner's, then the patient's called back
    view = escalation(svc, lambda v: v.acknowledged_at is not None)
    assert view.acknowledged_via == "call" and view.steps[0].provider_id.endswith("/connected")
    # Only the patient's leg still sends to `sink` after the practitioner's digit: the tone crossed.
    assert scen.tone_packets([pl for pt, pl in sink.packets if pt == 8], TONE) > 50
    assert outbox(svc) == []
    assert "33633445566" not in svc.log_tail(200000)


def test_a_service_killed_during_an_alert_call_never_calls_again_after_its_restart(tmp_path, prompts_built):
    """SIGKILL while the practitioner's phone is answered and the message plays; the restarted
    service finds the step `unknown` (it may have reached the practitioner), does not call again,
    and the chain goes on to its SMS."""
    import signal
    import socket

    (tmp_path / "dialplans").mkdir()
    (tmp_path / "dialplans" / "alert.yaml").write_text(DIALPLAN.format(number=NUMBER, doctor=DOCTOR))
    trunk_port = free_udp_port()
    config = base_config(tmp_path, tmp_path / "dialplans", REPO / "prompts", workers=1)
    config["controller"]["outbound_trunk"] = f"127.0.0.1:{trunk_port}"
    config["escalation"] = {"enabled": True, "ack_secret": "test-secret", "outbox_file": str(tmp_path / "outbox.jsonl"),
                            "voice_calls": True, "call_repeats": 3}
    svc = ServeProcess(tmp_path, config).start()
    svc.trunk_port, svc.outbox = trunk_port, tmp_path / "outbox.jsonl"
    try:
        doctor, doctor_rtp = practitioner(svc, tmp_path, "doctor_listens", [("pause", 60000)], end="bye")
        caller, _ = patient(svc, tmp_path, "vital_kill", [("pause", 1500), ("digit", "1"), ("pause", 500)], end="bye")
        sipp_ok(caller)
        assert doctor_rtp.wait_audible(25) >= 25  # answered: the message plays
        assert [s.state for s in escalation(svc, lambda v: True).steps] == ["sending"]
        assert svc.stop(sig=signal.SIGKILL) == []  # its workers end with it (their stdin closes)
        doctor.kill()
    finally:
        svc.stop()
    trunk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the practitioner's side now only listens
    trunk.bind(("127.0.0.1", trunk_port))
    trunk.settimeout(0.2)
    again = ServeProcess(tmp_path, config).start()
    again.outbox = tmp_path / "outbox.jsonl"
    try:
        view = escalation(again, lambda v: len(v.steps) == 2)
        assert [(s.channel, s.state) for s in view.steps] == [("call", "unknown"), ("sms", "sent")]
        [sms] = outbox(again)
        assert sms["to"] == DOCTOR
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                data, _ = trunk.recvfrom(65535)
            except socket.timeout:
                continue
            assert not data.startswith(b"INVITE"), "the practitioner was called a second time"
    finally:
        trunk.close()
        assert again.stop() == []
