"""SIPp scenarios for whole-service runs, generated for each case (digit pressed, who hangs up).

Here: the patient calling, the secretary's phone, a secretary's softphone taking a run of offers.
The practitioner's phone for alert calls is in sipp_alert.py, the audio captures in rtp.py; their
names are names of this module too, as the whole-service tests use them.
"""

from __future__ import annotations

from pathlib import Path

from callrouter.devtools.rtp import alaw, dtmf_pcap, linear, rtp_payloads, tone_packets, tone_pcap  # noqa: F401
from callrouter.devtools.sipp_alert import (  # noqa: F401
    WORKER_EVENT_PT, called_back_patient_phone, media_steps, practitioner_and_patient_phones, practitioner_phone,
)
from callrouter.devtools.sipp_xml import (  # noqa: F401
    BYE, HEAD, INVITE, PCAPS, WAIT_BYE, pause, play, sdp, uas_answer, uas_bye, uas_ok, uas_reply,
)

def caller(directory: Path, name: str, steps: list[tuple], end: str = "bye", wait_bye_ms: int = 30000) -> Path:
    """A patient's call: answered, then steps ("pause", ms) / ("digit", "3") / ("audio", ms), then
    `end`: "bye" (the patient hangs up), "wait_bye" (the service hangs up within `wait_bye_ms`, or
    the call fails) or "wait_bye_or_bye" (the service hangs up within `wait_bye_ms`, or the patient
    does, as a patient hearing nothing more would)."""
    body = HEAD.format(name=name) + INVITE
    for kind, value in steps:
        if kind == "pause":
            body += pause(value)
        elif kind == "digit":
            pcap = {"#": "dtmf_2833_pound.pcap", "*": "dtmf_2833_star.pcap"}.get(value, f"dtmf_2833_{value}.pcap")
            body += play(pcap) + pause(400)
        elif kind == "audio":
            body += play("g711a.pcap") + pause(value)
    if end == "wait_bye_or_bye":
        body += (WAIT_BYE.format(timeout_ms=f'{wait_bye_ms}" ontimeout="hangup') + '  <nop next="done"/>\n'
                 + '  <label id="hangup"/>\n' + BYE + '  <label id="done"/>\n')
    else:
        body += BYE if end == "bye" else WAIT_BYE.format(timeout_ms=wait_bye_ms)
    body += "</scenario>\n"
    path = directory / f"{name}.xml"
    path.write_text(body)
    return path


def secretary(directory: Path, name: str, practice: str | None, answer_after_ms: int = 300,
              hangup_after_ms: int | None = None) -> Path:
    """A secretary's softphone: checks the offered call names the practice, rings, answers with
    media at [$rtp_port], then waits for the BYE or hangs up itself after `hangup_after_ms`.
    With `practice` None, any call (e.g. a patient's phone called back, which gets no header)."""
    check = ("" if practice is None else
             f'      <ereg regexp="{practice}" search_in="hdr" header="X-Callrouter-Practice:" check_it="true" '
             'assign_to="pr"/>\n')
    ok = """      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:secretary@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

""" + sdp("secretary")
    body = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
  <Global variables="rtp_port"/>
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
{check}      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller_from"/>
      <ereg regexp="sips?:[^>;]*" search_in="hdr" header="Contact:" assign_to="caller_contact"/>
    </action>
  </recv>
  <Reference variables="{'pr,' if practice is not None else ''}caller_from,caller_contact"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:secretary@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="{answer_after_ms}"/>
  <send retrans="500">
    <![CDATA[
{ok}
    ]]>
  </send>
  <recv request="ACK"/>
"""
    if hangup_after_ms is None:
        body += WAIT_BYE.format(timeout_ms=40000)
    else:
        body += pause(hangup_after_ms) + uas_bye("secretary", uas_reply("secretary")[0])
    path = directory / f"{name}.xml"
    path.write_text(body + "</scenario>\n")
    return path


# --- a secretary's softphone taking a run of offered calls ---------------------------------------

SOFTPHONE_MODES = ("answer", "ignore")


def softphone_plan(directory: Path, name: str, calls: list[tuple[str, int, int]]) -> Path:
    """What `softphone()` does with each offered call, in order, as a SIPp injection file: one
    (mode, ring_ms, talk_ms) per call. mode "answer": rings `ring_ms`, answers, then hangs up after
    `talk_ms` (0: waits for the other side's BYE); "ignore": rings until the offer is cancelled."""
    lines = ["SEQUENTIAL"]
    for mode, ring_ms, talk_ms in calls:
        if mode not in SOFTPHONE_MODES:
            raise ValueError(f"unknown softphone mode {mode!r}; expected one of {', '.join(SOFTPHONE_MODES)}")
        lines.append(f"{mode};{int(ring_ms)};{int(talk_ms)};")
    path = directory / f"{name}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def softphone(directory: Path, name: str) -> Path:
    """A registered secretary's softphone (UAS) for several offered calls, each handled as the
    injection file from `softphone_plan()` says (run SIPp with `-inf` on it and `-m` calls); media
    at [$rtp_port]. A cancelled offer is ended as a phone does (200 to the CANCEL, 487 and its ACK),
    the 487 carrying every Via of the INVITE: with only the proxy's, the worker would drop it and
    hold a call slot until its transaction timed out. The 200 echoes the edge's Record-Route, as a
    phone does: without it the worker's ACK and BYE went straight to SIPp, whose 200 to the BYE
    went to the edge (SIPp answers its peer, not the Via), which dropped it, and the worker kept
    the call slot until the BYE's transaction timed out."""
    contact = "Contact: <sip:softphone@[local_ip]:[local_port]>"
    reply = """      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      """ + contact + "\n"
    body = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
  <Global variables="rtp_port"/>
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller_from"/>
      <ereg regexp="sips?:[^>;]*" search_in="hdr" header="Contact:" assign_to="caller_contact"/>
      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="invite_cseq"/>
      <ereg regexp="Via: SIP/2[.]0/[A-Z]+ [^[:space:]]+([[:space:]]+Via: SIP/2[.]0/[A-Z]+ [^[:space:]]+)*"
            search_in="msg" check_it="true" assign_to="invite_vias,via_tail"/>
      <assignstr assign_to="mode" value="[field0]"/>
      <assignstr assign_to="ring_text" value="[field1]"/>
      <assignstr assign_to="talk_text" value="[field2]"/>
      <todouble assign_to="ring_ms" variable="ring_text"/>
      <todouble assign_to="talk_ms" variable="talk_text"/>
      <strcmp assign_to="not_ignoring" variable="mode" value="ignore"/>
      <test assign_to="ignoring" variable="not_ignoring" compare="equal" value="0"/>
      <test assign_to="waits_bye" variable="talk_ms" compare="equal" value="0"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
{reply}      Content-Length: 0

    ]]>
  </send>
  <nop next="ignore" test="ignoring"/>
  <pause variable="ring_ms"/>
""" + uas_ok("secretary", reply + "      [last_Record-Route:]\n") + f"""  <nop next="wait_bye" test="waits_bye"/>
  <pause variable="talk_ms"/>
{uas_bye("softphone", contact, then="done")}  <label id="wait_bye"/>
{WAIT_BYE.format(timeout_ms=60000)}  <nop next="done"/>
  <label id="ignore"/>
  <recv request="CANCEL"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
{reply}      Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [$invite_vias]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [$invite_cseq] INVITE
      {contact}
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK" timeout="5000" ontimeout="done"/>
  <label id="done"/>
  <Reference variables="caller_from,caller_contact,invite_cseq,invite_vias,via_tail,mode,ring_text,talk_text"/>
</scenario>
"""
    path = directory / f"{name}.xml"
    path.write_text(body)
    return path
