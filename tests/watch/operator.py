"""SIPp "operators" behind the outbound trunk, as a practice's line is handled by its operator when a
watch call reaches it: forwarded back to the edge (two SIPp twins: the one on the trunk takes the
call and tells the other, which places the forwarded call from the trusted trunk address to the
practice's number, presenting the caller's number and name), or not forwarded: answered at the
practice, busy, or silent (it never rings nor comes back).

Each is written for the run (the edge's port and the release code are the service's)."""

from __future__ import annotations

from pathlib import Path

HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
"""
REPLY = """      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]op[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:line@[local_ip]:[local_port]>
"""
TAKE_INVITE = """  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="sip:([^@;>]+)@" search_in="hdr" header="From:" assign_to="from_all,caller"/>
      <ereg regexp="^[[:space:]]*\\"([^\\"]*)\\"" search_in="hdr" header="From:" assign_to="name_all,caller_name"/>
      <ereg regexp="sip:([^@;>]+)@" search_in="hdr" header="To:" assign_to="to_all,number"/>
      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="invite_cseq"/>
    </action>
  </recv>
"""
RINGING = """  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
""" + REPLY + """      Content-Length: 0

    ]]>
  </send>
"""
CANCELLED = """  <recv request="CANCEL" timeout="{timeout_ms}"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
""" + REPLY + """      Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]op[call_number]
      [last_Call-ID:]
      CSeq: [$invite_cseq] INVITE
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
"""
END = """  <Reference variables="from_all,caller,name_all,caller_name,to_all,number,invite_cseq"/>
</scenario>
"""


def forwarding(directory: Path, edge_port: int, release_code: int = 603) -> tuple[Path, Path]:
    """(the trunk's twin, the forwarding twin). Start the forwarding twin first (it listens for
    the other's command), with `-3pcc 127.0.0.1:<twin port>` on both and the edge as remote."""
    trunk = HEAD.format(name="operator-trunk") + TAKE_INVITE + RINGING + """  <sendCmd>
    <![CDATA[
      Call-ID: fwd-[call_id]
      X-Caller: [$caller]
      X-Caller-Name: [$caller_name]
      X-Number: [$number]

    ]]>
  </sendCmd>
""" + CANCELLED.format(timeout_ms=30000) + END
    forward = HEAD.format(name="operator-forward") + """  <recvCmd>
    <action>
      <ereg regexp="X-Caller: ([^\\r\\n]*)" search_in="msg" assign_to="c_all,caller"/>
      <ereg regexp="X-Caller-Name: ([^\\r\\n]*)" search_in="msg" assign_to="n_all,caller_name"/>
      <ereg regexp="X-Number: ([^\\r\\n]*)" search_in="msg" assign_to="u_all,number"/>
    </action>
  </recvCmd>
  <send retrans="500">
    <![CDATA[
      INVITE sip:[$number]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[$caller_name]" <sip:[$caller]@[local_ip]:[local_port]>;tag=[pid]fw[call_number]
      To: <sip:[$number]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[$caller]@[local_ip]:[local_port]>
      Diversion: <sip:[$number]@operator.example>;reason=unconditional
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="{code}"/>
  <send>
    <![CDATA[
      ACK sip:[$number]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-5]
      From: "[$caller_name]" <sip:[$caller]@[local_ip]:[local_port]>;tag=[pid]fw[call_number]
      To: <sip:[$number]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="500"/>
  <Reference variables="c_all,n_all,u_all"/>
</scenario>
""".replace("{code}", str(release_code))
    paths = directory / "operator-trunk.xml", directory / "operator-forward.xml"
    paths[0].write_text(trunk)
    paths[1].write_text(forward)
    return paths


def answering(directory: Path) -> Path:
    """The practice's own phone answers (the line is not forwarded), until the caller hangs up."""
    body = HEAD.format(name="operator-answers") + TAKE_INVITE + RINGING + """  <pause milliseconds="300"/>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
""" + REPLY + """      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=line 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8
      a=rtpmap:8 PCMA/8000

    ]]>
  </send>
  <recv request="ACK"/>
  <recv request="BYE" timeout="20000"/>
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
""" + END
    path = directory / "operator-answers.xml"
    path.write_text(body)
    return path


def busy(directory: Path) -> Path:
    """The line is busy: 486, never forwarded."""
    body = HEAD.format(name="operator-busy") + TAKE_INVITE + """  <send>
    <![CDATA[
      SIP/2.0 486 Busy Here
""" + REPLY + """      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
""" + END
    path = directory / "operator-busy.xml"
    path.write_text(body)
    return path


def silent(directory: Path, timeout_ms: int = 30000) -> Path:
    """The network takes the call (100 Trying) and nothing more comes: no ring, no return, until
    the caller gives up with a CANCEL."""
    body = HEAD.format(name="operator-silent") + TAKE_INVITE + """  <send>
    <![CDATA[
      SIP/2.0 100 Trying
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
""" + CANCELLED.format(timeout_ms=timeout_ms) + END
    path = directory / "operator-silent.xml"
    path.write_text(body)
    return path
