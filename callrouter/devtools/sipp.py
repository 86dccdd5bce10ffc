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

""" + _sdp("secretary")
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
        body += _WAIT_BYE.format(timeout_ms=40000)
    else:
        body += _pause(hangup_after_ms) + _uas_bye("secretary", _uas_reply("secretary")[0])
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
    hold a call slot until its transaction timed out."""
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
""" + _uas_ok("secretary", reply) + f"""  <nop next="wait_bye" test="waits_bye"/>
  <pause variable="talk_ms"/>
  <send retrans="500">
    <![CDATA[
      BYE [$caller_contact] SIP/2.0
      [routes]
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:softphone@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
      To: [$caller_from]
      [last_Call-ID:]
      CSeq: 1 BYE
      {contact}
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true" next="done"/>
  <label id="wait_bye"/>
{_WAIT_BYE.format(timeout_ms=60000)}  <nop next="done"/>
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


# --- a practitioner's phone receiving an alert call ------------------------------------------------

# The telephone-event payload type pjsua offers in the calls the media workers place.
WORKER_EVENT_PT = 120


def alaw(sample: int) -> int:
    """One 16-bit linear sample as G.711 A-law."""
    pcm = sample >> 3
    mask = 0xD5
    if pcm < 0:
        mask, pcm = 0x55, -pcm - 1
    seg = next((i for i, end in enumerate((0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)) if pcm <= end), 8)
    value = 0x7F if seg >= 8 else (seg << 4) | ((pcm >> 1 if seg < 2 else pcm >> seg) & 0x0F)
    return value ^ mask


def linear(code: int) -> int:
    """One G.711 A-law byte as a 16-bit linear sample."""
    code ^= 0x55
    value = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    value += 8 if seg == 0 else 0x108
    if seg > 1:
        value <<= seg - 1
    return value if code & 0x80 else -value


def tone_pcap(directory: Path, frequency: float, ms: int, level: float = 0.3) -> Path:
    """A capture SIPp can play (`play_pcap_audio`): a pure tone as A-law RTP, 20 ms a packet."""
    import math
    import struct

    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    ssrc = 0x5A5A1234
    for n in range(max(1, ms // 20)):
        payload = bytes(alaw(int(level * 32767 * math.sin(2 * math.pi * frequency * (n * 160 + i) / 8000)))
                        for i in range(160))
        rtp = struct.pack("!BBHII", 0x80, 8, n, n * 160, ssrc) + payload
        udp = struct.pack("!HHHH", 40000, 40000, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        frame = b"\x00" * 12 + b"\x08\x00" + ip
        out += struct.pack("<IIII", n // 50, (n % 50) * 20000, len(frame), len(frame)) + frame
    path = directory / f"tone_{int(frequency)}_{ms}.pcap"
    path.write_bytes(bytes(out))
    return path


def tone_packets(payloads: list[bytes], frequency: float, purity: float = 0.6) -> int:
    """How many A-law payloads are mostly a tone at `frequency` (Goertzel), e.g. what a phone's
    RTP socket received, to tell a party heard the other's tone through a bridge."""
    import math

    coeff = 2 * math.cos(2 * math.pi * frequency / 8000)
    found = 0
    for payload in payloads:
        samples = [linear(b) for b in payload]
        energy = sum(x * x for x in samples)
        if len(samples) < 80 or energy < len(samples) * 100 * 100:
            continue
        s1 = s2 = 0.0
        for x in samples:
            s1, s2 = x + coeff * s1 - s2, s1
        power = s1 * s1 + s2 * s2 - coeff * s1 * s2
        if power / (len(samples) / 2 * energy) >= purity:
            found += 1
    return found


def rtp_payloads(pcap: str | Path) -> list[bytes]:
    """The RTP payloads of an Ethernet capture (e.g. the speech SIPp plays with "audio" steps), to
    recognise them where they arrive."""
    import struct

    data = (PCAPS / pcap).read_bytes()
    out, offset = [], 24
    while offset + 16 <= len(data):
        length = struct.unpack("<I", data[offset + 8:offset + 12])[0]
        ip = offset + 16 + 14
        rtp = ip + (data[ip] & 0x0F) * 4 + 8
        out.append(data[rtp + 12:offset + 16 + length])
        offset += 16 + length
    return out


def dtmf_pcap(directory: Path, digit: str, payload_type: int) -> Path:
    """A copy of SIPp's RFC 2833 capture of `digit` with the events' RTP payload type changed (and
    the UDP checksums cleared, which IPv4 allows), written under `directory`."""
    import struct

    source = PCAPS / ({"#": "dtmf_2833_pound.pcap", "*": "dtmf_2833_star.pcap"}.get(digit, f"dtmf_2833_{digit}.pcap"))
    data = bytearray(source.read_bytes())
    if struct.unpack("<I", data[:4])[0] != 0xA1B2C3D4 or struct.unpack("<I", data[20:24])[0] != 1:
        raise ValueError(f"{source}: expected a little-endian Ethernet capture")
    offset = 24
    while offset + 16 <= len(data):
        length = struct.unpack("<I", data[offset + 8:offset + 12])[0]
        packet = offset + 16
        ip = packet + 14
        udp = ip + (data[ip] & 0x0F) * 4
        data[udp + 6:udp + 8] = b"\0\0"
        rtp = udp + 8
        data[rtp + 1] = (data[rtp + 1] & 0x80) | payload_type
        offset = packet + length
    path = directory / f"dtmf_{'pound' if digit == '#' else 'star' if digit == '*' else digit}_pt{payload_type}.pcap"
    path.write_bytes(bytes(data))
    return path

def _uas_reply(user: str) -> tuple[str, str]:
    """(Contact header, the header lines a UAS copies into each of its answers)."""
    contact = f"Contact: <sip:{user}@[local_ip]:[local_port]>"
    return contact, """      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      """ + contact + "\n"


def _uas_ok(user: str, reply: str) -> str:
    """Answer with media at [$rtp_port], take the ACK."""
    return f"""  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
{reply}      Content-Type: application/sdp
      Content-Length: [len]

""" + _sdp(user) + """
    ]]>
  </send>
  <recv request="ACK"/>
"""


def _uas_answer(user: str, reply: str, after_ms: int) -> str:
    """Wait `after_ms`, then answer (_uas_ok)."""
    return _pause(after_ms) + _uas_ok(user, reply)


def _uas_bye(user: str, contact: str) -> str:
    """The UAS hangs up (to the caller captured as caller_from/caller_contact)."""
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
  <recv response="200" crlf="true"/>
"""


def _media_steps(directory: Path, steps: list[tuple], event_pt: int) -> str:
    """("pause", ms), ("digit", "1") as RFC 4733 events of type `event_pt`, ("audio", ms) of
    speech, ("tone", (Hz, ms)) a pure tone easy to recognise."""
    body = ""
    for kind, value in steps:
        if kind == "pause":
            body += _pause(value)
        elif kind == "digit":
            body += _play(str(dtmf_pcap(directory, value, event_pt))) + _pause(400)
        elif kind == "audio":
            body += _play("g711a.pcap") + _pause(value)
        elif kind == "tone":
            freq, ms = value
            body += _play(str(tone_pcap(directory, freq, ms))) + _pause(ms)
    return body


def _alert_invite(name: str, reply: str, extra_ereg: str = "") -> str:
    """The head of a phone behind the trunk that an alert call reaches: the INVITE (which must
    carry X-Callrouter-Alert), then 180."""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
  <Global variables="rtp_port"/>
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp="esc-[0-9]+-[0-9]+-[0-9]+" search_in="hdr" header="X-Callrouter-Alert:" check_it="true" assign_to="alert"/>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller_from"/>
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
    `answer`, it rings, answers with media at [$rtp_port], then runs `steps` (see _media_steps) and
    ends with `end`: "wait_bye" (the service hangs up) or "bye" (the practitioner hangs up).
    Without `answer`, it refuses with `refuse_code` (486 busy, 480 no answer...). Digits go as
    RFC 4733 events with the payload type the media workers offer (`event_pt`): a worker only
    reads events with the type it offered."""
    contact, reply = _uas_reply("practitioner")
    body = _alert_invite(name, reply) + '  <Reference variables="alert,caller_from,caller_contact"/>\n'
    if not answer:
        body += _pause(answer_after_ms) + f"""  <send>
    <![CDATA[
      SIP/2.0 {refuse_code} Refused
{reply}      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
  <Reference variables="rtp_port"/>
"""
    else:
        body += _uas_answer("practitioner", reply, answer_after_ms) + _media_steps(directory, steps, event_pt)
        body += _uas_bye("practitioner", contact) if end == "bye" else _WAIT_BYE.format(timeout_ms=wait_bye_ms)
    path = directory / f"{name}.xml"
    path.write_text(body + "</scenario>\n")
    return path


def practitioner_and_patient_phones(directory: Path, name: str, patient_number: str, practitioner_steps: list[tuple],
                                    patient_hangup_after_ms: int, answer_after_ms: int = 300,
                                    event_pt: int = WORKER_EVENT_PT) -> Path:
    """Both phones an alert call reaches behind the trunk, in one SIPp UAS run with `-m 2`: the
    practitioner's (answers, runs `practitioner_steps` as `practitioner_phone()` does, then waits
    for the BYE) and, told apart by the To header, the patient's called back after a 2 (answers,
    hangs up after `patient_hangup_after_ms`). Media of both at [$rtp_port]."""
    import re

    contact, reply = _uas_reply("phone")
    is_patient = (f'      <ereg regexp="{re.escape(patient_number)}" search_in="hdr" header="To:" '
                  'assign_to="is_patient"/>\n')
    answer = _uas_answer("phone", reply, answer_after_ms)
    body = _alert_invite(name, reply, is_patient) + '  <nop next="patient" test="is_patient"/>\n' + answer
    body += _media_steps(directory, practitioner_steps, event_pt)
    body += _WAIT_BYE.format(timeout_ms=60000) + '  <nop next="done"/>\n  <label id="patient"/>\n' + answer
    body += _pause(patient_hangup_after_ms) + _uas_bye("phone", contact)
    body += """  <label id="done"/>
  <Reference variables="alert,caller_from,caller_contact,is_patient"/>
</scenario>
"""
    path = directory / f"{name}.xml"
    path.write_text(body)
    return path
