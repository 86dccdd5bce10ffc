"""SIPp loads for the call benchmarks: the scenarios, bounded runs, and INVITE-to-200 read to the
microsecond from SIPp's message trace (its own response-time counters have a 1 ms resolution).

A run is always bounded: `-m` calls, a global `-timeout`, and the process killed past it.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from callrouter.devtools.serve import free_udp_port
from callrouter.devtools.sipp_xml import BYE, HEAD, INVITE, PCAPS, pause

CALLER = "+33600000000"
_STAMP = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{6})$")


def menu_caller(directory: Path, name: str, hold_ms: int, audio: bool = False, digit: str | None = None) -> Path:
    """A patient answered by the service, who holds `hold_ms` (sending RTP from a capture, looped,
    when `audio`), optionally after pressing `digit` (SIP INFO: no RTP from SIPp's own port), then
    hangs up."""
    body = HEAD.format(name=name) + INVITE
    if digit is not None:
        body += info_digit(digit) + pause(300)
    if audio:
        # g711a.pcap lasts about 6.8 s: played again every 6.5 s for as long as the call is held.
        rounds = max(1, hold_ms // 6500)
        body += ('  <nop><action><assign assign_to="n" value="0"/></action></nop>\n'
                 '  <label id="1"/>\n'
                 f'  <nop><action><exec play_pcap_audio="{PCAPS / "g711a.pcap"}"/>'
                 '<add assign_to="n" value="1"/>'
                 f'<test assign_to="more" variable="n" compare="less_than" value="{rounds}"/></action></nop>\n'
                 f'  <pause milliseconds="{min(hold_ms, 6500)}" next="1" test="more"/>\n')
        rest = hold_ms - rounds * min(hold_ms, 6500)
        if rest > 0:
            body += pause(rest)
    else:
        body += pause(hold_ms)
    bye = BYE.replace("CSeq: 2 BYE", "CSeq: 3 BYE") if digit is not None else BYE
    path = directory / f"{name}.xml"
    path.write_text(body + bye + "</scenario>\n")
    return path


def info_digit(digit: str) -> str:
    return f"""  <send retrans="500">
    <![CDATA[
      INFO [next_url] SIP/2.0
      [routes]
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Patient" <sip:[$caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 INFO
      Contact: sip:[$caller]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={digit}
      Duration=160
    ]]>
  </send>
  <recv response="200"/>
"""


def answering_phone(directory: Path, name: str) -> Path:
    """A UAS that answers every INVITE at once with 200 and SDP at its -mp port (echoed with
    -rtp_echo), then waits for the BYE: the relay floor's far end, and the secretaries' phones."""
    body = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
  <recv request="INVITE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:phone@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=phone 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
    ]]>
  </send>
  <recv request="ACK"/>
  <recv request="BYE"/>
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
</scenario>
"""
    path = directory / f"{name}.xml"
    path.write_text(body)
    return path


@dataclass
class Phones:
    """A background SIPp UAS (answering_phone) with RTP echo; stopped by `stop()`."""

    proc: subprocess.Popen
    port: int
    media_port: int

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def start_phones(directory: Path, name: str, max_calls: int) -> Phones:
    scenario = answering_phone(directory, name)
    port, media = free_udp_port(), free_udp_port(even=True, span=4)
    args = ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1", "-mp", str(media),
            "-rtp_echo", "-nostdin", "-l", str(max_calls), "-max_recv_loops", "1000", "-timeout", "3600s",
            "-trace_err"]
    proc = subprocess.Popen(args, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return Phones(proc, port, media)


@dataclass
class Load:
    """What one bounded SIPp UAC run gave."""

    calls: int
    rate: float
    successful: int
    failed: int
    wall_s: float
    invite_to_200_ms: list[float] = field(default_factory=list)
    failure_codes: dict[str, int] = field(default_factory=dict)

    def latency(self) -> dict:
        values = sorted(self.invite_to_200_ms)
        return {"p50": pct(values, 0.5), "p99": pct(values, 0.99), "max": round(values[-1], 3) if values else None,
                "samples": len(values)}

    def summary(self) -> dict:
        return {"calls": self.calls, "rate": self.rate, "successful": self.successful, "failed": self.failed,
                "wall_s": round(self.wall_s, 1), "invite_to_200_ms": self.latency(),
                "failure_codes": self.failure_codes}


def run_callers(directory: Path, scenario: Path, target: int, rate: float, calls: int,
                number: str, rtp_port: int | None = None, limit: int | None = None, trace: bool = True) -> Load:
    """`calls` calls at `rate`/s to 127.0.0.1:`target`, at most `limit` at once; blocks until done."""
    hold_guess = 120
    args = ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(free_udp_port()), "-m", str(calls),
            "-r", str(rate), "-l", str(limit or calls), "-s", number, "-set", "caller", CALLER,
            "-set", "rtp_port", str(rtp_port or free_udp_port(even=True)), "-mi", "127.0.0.1",
            "-mp", str(free_udp_port(even=True, span=4)),
            "-timeout", f"{int(calls / rate + hold_guess)}s", "-timeout_error", "-nostdin", "-trace_err",
            "-trace_stat", "-fd", "1", "-max_recv_loops", "1000", "-recv_timeout", "30000"]
    if trace:
        args.append("-trace_msg")
    args.append(f"127.0.0.1:{target}")
    started = time.monotonic()
    proc = subprocess.Popen(args, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.wait(timeout=calls / rate + hold_guess + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    wall = time.monotonic() - started
    prefix = f"{scenario.stem}_{proc.pid}"  # SIPp names its files after the scenario and its pid
    stats = last_stats(directory, prefix)
    load = Load(calls=calls, rate=rate, successful=int(stats.get("SuccessfulCall(C)", 0)),
                failed=int(stats.get("FailedCall(C)", calls)), wall_s=wall)
    load.failed = max(load.failed, calls - load.successful)
    if trace:
        load.invite_to_200_ms, load.failure_codes = invite_to_200(directory, prefix)
        for path in directory.glob(f"{prefix}_messages.log"):
            path.unlink()  # large; read once
    return load


def last_stats(directory: Path, prefix: str) -> dict[str, str]:
    files = sorted(directory.glob(f"{prefix}_.csv"))
    if not files:
        return {}
    lines = [line for line in files[-1].read_text().splitlines() if line.strip()]
    return dict(zip(lines[0].split(";"), lines[-1].split(";"))) if len(lines) >= 2 else {}


def invite_to_200(directory: Path, prefix: str) -> tuple[list[float], dict[str, int]]:
    """Per call: the first INVITE sent to the first 200 to it, in ms; and final failure codes seen."""
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    failures: dict[str, set[str]] = {}
    for path in directory.glob(f"{prefix}_messages.log"):
        stamp = 0.0
        block: list[str] = []
        with path.open(errors="replace") as f:
            for line in f:
                match = _STAMP.match(line.rstrip("\n"))
                if match:
                    _take(block, stamp, sent, answered, failures)
                    stamp = datetime.fromisoformat(f"{match.group(1)} {match.group(2)}").timestamp()
                    block = []
                else:
                    block.append(line)
            _take(block, stamp, sent, answered, failures)
    delays = [(answered[c] - sent[c]) * 1000.0 for c in answered if c in sent]
    return delays, {code: len(calls) for code, calls in sorted(failures.items())}


def _take(block: list[str], stamp: float, sent: dict, answered: dict, failures: dict) -> None:
    if len(block) < 2:
        return
    outgoing = block[0].startswith("UDP message sent")
    lines = [line for line in block[1:40] if line.strip()]
    if not lines:
        return
    first = lines[0].strip()
    call_id = cseq = ""
    for line in lines[1:]:
        low = line.lower()
        if low.startswith("call-id:"):
            call_id = line.split(":", 1)[1].strip()
        elif low.startswith("cseq:"):
            cseq = line.split(":", 1)[1].strip()
    if not call_id or not cseq.endswith("INVITE"):
        return
    if outgoing and first.startswith("INVITE ") and call_id not in sent:
        sent[call_id] = stamp
    elif not outgoing and first.startswith("SIP/2.0 "):
        code = first.split()[1]
        if code == "200" and call_id not in answered:
            answered[call_id] = stamp
        elif code[0] in "3456":
            failures.setdefault(code, set()).add(call_id)


def pct(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))], 3) if values else None
