"""SIPp scenarios of a practitioner's phone receiving an alert call (and, for a callback task, the
patient's phone dialled next), pressing digits or playing tones once answered."""

from __future__ import annotations

from pathlib import Path

from callrouter.devtools.rtp import dtmf_pcap, tone_pcap
from callrouter.devtools.sipp_xml import BYE, WAIT_BYE, pause, play, uas_answer, uas_bye, uas_reply

# The telephone-event payload type pjsua offers in the calls the media workers place.
WORKER_EVENT_PT = 120


def media_steps(directory: Path, steps: list[tuple], event_pt: int) -> str:
    """("pause", ms), ("digit", "1") as RFC 4733 events of type `event_pt`, ("audio", ms) of
    speech, ("tone", (Hz, ms)) a pure tone easy to recognise."""
    body = ""
    for kind, value in steps:
        if kind == "pause":
            body += pause(value)
        elif kind == "digit":
            body += play(str(dtmf_pcap(directory, value, event_pt))) + pause(400)
        elif kind == "audio":
            body += play("g711a.pcap") + pause(value)
        elif kind == "tone":
            freq, ms = value
            body += play(str(tone_pcap(directory, freq, ms))) + pause(ms)
    return body


_ALERT_EREG = ('      <ereg regexp="esc-[0-9]+-[0-9]+-[0-9]+" search_in="hdr" header="X-Callrouter-Alert:" '
               'check_it="true" assign_to="alert"/>\n')


def _alert_invite(name: str, reply: str, extra_ereg: str = "", alert: bool = True) -> str:
    """The head of a phone behind the trunk that one of our calls reaches: the INVITE (with
    `alert`, it must carry X-Callrouter-Alert), then 180."""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
  <Global variables="rtp_port"/>
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
{_ALERT_EREG if alert else ""}      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller_from"/>
      <ereg regexp="sips?:[^>;]*" search_in="hdr" header="Contact:" assign_to="caller_contact"/>
{extra_ereg}    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
{reply}      Content-Length: 0

    ]]>
  </send>
"""


def practitioner_phone(directory: Path, name: str, steps: list[tuple], answer: bool = True,
                       answer_after_ms: int = 300, end: str = "wait_bye", refuse_code: int = 486,
                       wait_bye_ms: int = 40000, event_pt: int = WORKER_EVENT_PT) -> Path:
    """The phone an escalation's alert call reaches (a UAS behind the outbound trunk). With
    `answer`, it rings, answers with media at [$rtp_port], then runs `steps` (see media_steps) and
    ends with `end`: "wait_bye" (the service hangs up) or "bye" (the practitioner hangs up).
    Without `answer`, it refuses with `refuse_code` (486 busy, 480 no answer...). Digits go as
    RFC 4733 events with the payload type the media workers offer (`event_pt`): a worker only
    reads events with the type it offered."""
    contact, reply = uas_reply("practitioner")
    body = _alert_invite(name, reply) + '  <Reference variables="alert,caller_from,caller_contact"/>\n'
    if not answer:
        body += pause(answer_after_ms) + f"""  <send>
    <![CDATA[
      SIP/2.0 {refuse_code} Refused
{reply}      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
  <Reference variables="rtp_port"/>
"""
    else:
        body += uas_answer("practitioner", reply, answer_after_ms) + media_steps(directory, steps, event_pt)
        body += uas_bye("practitioner", contact) if end == "bye" else WAIT_BYE.format(timeout_ms=wait_bye_ms)
    path = directory / f"{name}.xml"
    path.write_text(body + "</scenario>\n")
    return path


def called_back_patient_phone(directory: Path, name: str, steps: list[tuple], answer_after_ms: int = 500,
                              event_pt: int = WORKER_EVENT_PT) -> Path:
    """The patient's phone behind the trunk that a callback task dials: rings, answers with media
    at [$rtp_port], runs `steps` (see media_steps: ("digit", "1") is her « tapez 1 »), then hangs up."""
    contact, reply = uas_reply("patient")
    body = _alert_invite(name, reply, alert=False) + uas_answer("patient", reply, answer_after_ms)
    body += media_steps(directory, steps, event_pt) + uas_bye("patient", contact)
    path = directory / f"{name}.xml"
    path.write_text(body + '  <Reference variables="caller_from,caller_contact"/>\n</scenario>\n')
    return path


def practitioner_and_patient_phones(directory: Path, name: str, patient_number: str, practitioner_steps: list[tuple],
                                    patient_hangup_after_ms: int, answer_after_ms: int = 300,
                                    event_pt: int = WORKER_EVENT_PT) -> Path:
    """Both phones an alert call reaches behind the trunk, in one SIPp UAS run with `-m 2`: the
    practitioner's (answers, runs `practitioner_steps` as `practitioner_phone()` does, then waits
    for the BYE) and, told apart by the To header, the patient's called back after a 2 (answers,
    hangs up after `patient_hangup_after_ms`). Media of both at [$rtp_port]."""
    import re

    contact, reply = uas_reply("phone")
    is_patient = (f'      <ereg regexp="{re.escape(patient_number)}" search_in="hdr" header="To:" '
                  'assign_to="is_patient"/>\n')
    answer = uas_answer("phone", reply, answer_after_ms)
    body = _alert_invite(name, reply, is_patient) + '  <nop next="patient" test="is_patient"/>\n' + answer
    body += media_steps(directory, practitioner_steps, event_pt)
    body += WAIT_BYE.format(timeout_ms=60000) + '  <nop next="done"/>\n  <label id="patient"/>\n' + answer
    body += pause(patient_hangup_after_ms) + uas_bye("phone", contact)
    body += """  <label id="done"/>
  <Reference variables="alert,caller_from,caller_contact,is_patient"/>
</scenario>
"""
    path = directory / f"{name}.xml"
    path.write_text(body)
    return path
