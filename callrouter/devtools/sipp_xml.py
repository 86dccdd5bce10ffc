"""The SIPp XML shared by the scenarios of sipp.py and sipp_alert.py: the scenario head, our SDP,
the patient's INVITE and BYE, pauses, audio played from a capture, and a UAS's answers."""

from __future__ import annotations

from pathlib import Path

PCAPS = Path("/usr/share/sip-tester")


HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
  <Global variables="rtp_port,caller"/>
"""


def sdp(owner: str) -> str:
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


INVITE = """  <send retrans="500">
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

""" + sdp("caller") + """
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


BYE = """  <send retrans="500">
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


WAIT_BYE = """  <recv request="BYE" timeout="{timeout_ms}"/>
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


def pause(ms: int) -> str:
    return f'  <pause milliseconds="{ms}"/>\n'


def play(pcap: str) -> str:
    return f'  <nop><action><exec play_pcap_audio="{PCAPS / pcap}"/></action></nop>\n'


def uas_reply(user: str) -> tuple[str, str]:
    """(Contact header, the header lines a UAS copies into each of its answers)."""
    contact = f"Contact: <sip:{user}@[local_ip]:[local_port]>"
    return contact, """      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      """ + contact + "\n"


def uas_ok(user: str, reply: str) -> str:
    """Answer with media at [$rtp_port], take the ACK."""
    return f"""  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
{reply}      Content-Type: application/sdp
      Content-Length: [len]

""" + sdp(user) + """
    ]]>
  </send>
  <recv request="ACK"/>
"""


def uas_answer(user: str, reply: str, after_ms: int) -> str:
    """Wait `after_ms`, then answer (uas_ok)."""
    return pause(after_ms) + uas_ok(user, reply)


def uas_bye(user: str, contact: str, then: str | None = None) -> str:
    """The UAS hangs up (to the caller captured as caller_from/caller_contact); with `then`, the
    scenario jumps to that label once the 200 comes."""
    return f"""  <send retrans="500">
    <![CDATA[
      BYE [$caller_contact] SIP/2.0
      [routes]
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
      To: [$caller_from]
      [last_Call-ID:]
      CSeq: 1 BYE
      {contact}
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"{f' next="{then}"' if then else ""}/>
"""
