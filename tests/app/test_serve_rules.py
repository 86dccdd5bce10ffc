"""Whole-service rules: when the dialplan is read for a call, and what a number no dialplan has gets.
`callrouter serve` with its real pjsua2 workers; SIPp as the patient and the secretary."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest

from callrouter.devtools import sipp as scen
from callrouter.devtools.serve import ServeProcess, base_config, free_udp_port
from tests.app.conftest import NUMBER
from tests.app.test_serve_calls import run_caller, sipp_ok
from tests.factories import REPO
from tests.media.harness import RtpSink, Sipp

pytestmark = pytest.mark.integration

PARIS = ZoneInfo("Europe/Paris")

# Open until `closes` (local time): the open menu's 3 queues for a secretary, the closed one's 3
# records a message. A caller is judged by the menu she heard.
DIALPLAN = """\
practice: rules-test
name: Cabinet Règles
timezone: Europe/Paris
numbers: ["{number}"]
hours:
  daily: ["00:00-{closes}"]
queues:
  general: {{label: Secrétariat, wrap_up: 1s, announce_interval: 30s}}
ivr:
  open_menu:
    prompt: triage_menu
    timeout: 8s
    retries: 0
    on_timeout: {{queue: general}}
    options:
      "3": {{reason: rendez-vous, queue: general}}
  closed_menu:
    prompt: triage_closed_menu
    timeout: 8s
    retries: 0
    on_timeout: {{announce: closed_message}}
    options:
      "3": {{reason: message, voicemail: true}}
routes:
  open: {{ivr: open_menu}}
  closed: {{ivr: closed_menu}}
  holiday: {{ivr: open_menu}}
"""


def start(tmp_path, closes: str) -> ServeProcess:
    (tmp_path / "dialplans").mkdir()
    (tmp_path / "dialplans" / "rules.yaml").write_text(DIALPLAN.format(number=NUMBER, closes=closes))
    secretary_port = free_udp_port()
    config = base_config(tmp_path, tmp_path / "dialplans", REPO / "prompts", workers=1,
                         agents={"*": [f"sip:secretary@127.0.0.1:{secretary_port}"]})
    svc = ServeProcess(tmp_path, config).start()
    svc.secretary_port = secretary_port
    return svc


def run_secretary(service, tmp_path, **kw):
    scenario = scen.secretary(tmp_path, "secretary", "rules-test", **kw)
    return Sipp(str(scenario), service=NUMBER, variables={"rtp_port": str(RtpSink().port)}, workdir=tmp_path,
                timeout_s=60, extra=["-p", str(service.secretary_port)])


def test_a_caller_who_heard_the_open_menu_and_presses_3_after_closing_time_reaches_a_secretary(tmp_path, prompts_built):
    """The practice closes at the next minute boundary; the patient calls 6 s before it, hears the
    open menu, and presses 3 some 6 s after it: she is queued and bridged to the secretary (the open
    menu's 3), not sent to the closed menu's voicemail."""
    now = dt.datetime.now(PARIS)
    closing = (now + dt.timedelta(seconds=45)).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    closes = "24:00" if closing.time() == dt.time(0) else closing.strftime("%H:%M")
    svc = start(tmp_path, closes)
    try:
        time.sleep(max(0.0, (closing - dt.datetime.now(PARIS)).total_seconds() - 6))
        secretary = run_secretary(svc, tmp_path, hangup_after_ms=1000)
        caller, _ = run_caller(svc, tmp_path, "straddles", [("pause", 12000), ("digit", "3")], end="wait_bye")
        sipp_ok(caller)
        sipp_ok(secretary)
        [record] = svc.calls(wait_closed=1)
        assert record.arrived_at.astimezone(PARIS) < closing < record.ivr_answers[0].at.astimezone(PARIS)
        assert (record.route, record.reason, record.outcome) == ("open", "rendez-vous", "answered")
        assert [(a.menu, a.digit) for a in record.ivr_answers] == [("open_menu", "3")]
        assert not list((tmp_path / "voicemail").rglob("*.wav"))
    finally:
        assert svc.stop() == []


REFUSED = scen.HEAD.format(name="unknown") + scen.INVITE.split('  <recv response="200"')[0] + """\
  <recv response="404"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Patient" <sip:[$caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <Reference variables="rtp_port"/>
</scenario>
"""


def test_a_number_no_dialplan_has_is_refused_404_and_never_answered(tmp_path, prompts_built):
    """SIPp fails on any response it does not expect: a 200 (or a 180) before the 404 fails it."""
    svc = start(tmp_path, "24:00")
    try:
        scenario = tmp_path / "unknown.xml"
        scenario.write_text(REFUSED.replace('  <recv response="180" optional="true"/>\n', "")
                            .replace('  <recv response="183" optional="true"/>\n', ""))
        caller = Sipp(str(scenario), remote_port=svc.worker_ports()[0], service="+33100009999",
                      variables={"rtp_port": str(free_udp_port()), "caller": "+33611220000"},
                      workdir=tmp_path, timeout_s=30)
        sipp_ok(caller, timeout=40)
        [record] = svc.calls(wait_closed=1)
        assert (record.outcome, record.cause, record.route, record.practice) == ("rejected", "unknown_number", "none", "")
        assert record.ivr_answered_at is None
        assert svc.metrics()['callrouter_calls_total{outcome="rejected",practice="unknown"}'] == 1
    finally:
        assert svc.stop() == []
