"""SIPp scenarios for whole-service runs, generated for each case (digit pressed, who hangs up)."""

from __future__ import annotations

from pathlib import Path

PCAPS = Path("/usr/share/sip-tester")

_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
  <Global variables="rtp_port,caller"/>
"""

def _sdp(owner: str) -> str:
    """G.711 A-law and RFC 4733 digits, media at [$rtp_port] (a socket the test owns)."""
    return f"""      v=0
      o={owner} 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [$rtp_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
"""


_INVITE = """  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Patient" <sip:[$caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:[$caller]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

""" + _sdp("caller") + """
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      [routes]
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Patient" <sip:[$caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:[$caller]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""

_BYE = """  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      [routes]
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Patient" <sip:[$caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:[$caller]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
"""

_WAIT_BYE = """  <recv request="BYE" timeout="{timeout_ms}"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"""


def _pause(ms: int) -> str:
    return f'  <pause milliseconds="{ms}"/>\n'


def _play(pcap: str) -> str:
    return f'  <nop><action><exec play_pcap_audio="{PCAPS / pcap}"/></action></nop>\n'


def caller(directory: Path, name: str, steps: list[tuple], end: str = "bye", wait_bye_ms: int = 30000) -> Path:
    """A patient's call: answered, then steps ("pause", ms) / ("digit", "3") / ("audio", ms), then
    `end`: "bye" (the patient hangs up) or "wait_bye" (the service hangs up)."""
    body = _HEAD.format(name=name) + _INVITE
    for kind, value in steps:
        if kind == "pause":
            body += _pause(value)
        elif kind == "digit":
            pcap = {"#": "dtmf_2833_pound.pcap", "*": "dtmf_2833_star.pcap"}.get(value, f"dtmf_2833_{value}.pcap")
            body += _play(pcap) + _pause(400)
        elif kind == "audio":
            body += _play("g711a.pcap") + _pause(value)
    body += (_BYE if end == "bye" else _WAIT_BYE.format(timeout_ms=wait_bye_ms)) + "</scenario>\n"
    path = directory / f"{name}.xml"
    path.write_text(body)
    return path


def secretary(directory: Path, name: str, practice: str, answer_after_ms: int = 300,
              hangup_after_ms: int | None = None) -> Path:
    """A secretary's softphone: checks the offered call names the practice, rings, answers with
    media at [$rtp_port], then waits for the BYE or hangs up itself after `hangup_after_ms`."""
    ok = """      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:secretary@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

""" + _sdp("secretary")
    body = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
  <Global variables="rtp_port"/>
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp="{practice}" search_in="hdr" header="X-Callrouter-Practice:" check_it="true" assign_to="pr"/>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller_from"/>
      <ereg regexp="sips?:[^>;]*" search_in="hdr" header="Contact:" assign_to="caller_contact"/>
    </action>
  </recv>
  <Reference variables="pr,caller_from,caller_contact"/>
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
        body += _WAIT_BYE.format(timeout_ms=40000)
    else:
        body += _pause(hangup_after_ms) + """  <send retrans="500">
    <![CDATA[
      BYE [$caller_contact] SIP/2.0
      [routes]
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:secretary@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
      To: [$caller_from]
      [last_Call-ID:]
      CSeq: 1 BYE
      Contact: <sip:secretary@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
"""
    path = directory / f"{name}.xml"
    path.write_text(body + "</scenario>\n")
    return path
