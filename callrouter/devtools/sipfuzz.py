"""A bounded, seeded SIP fuzz campaign against a real `callrouter serve` on loopback.

Message `i` of a campaign is INVITE, REGISTER or BYE turned by one to three mutators (bytes flipped,
cut, headers repeated, huge or non-UTF-8 values, wrong Content-Length, ...) drawn from a random
generator seeded with (seed, target, i): the same seed sends the same mutations again. Messages go
in bursts to each target (the edge from the trusted trunk address and from outsiders, its TCP
socket, each media worker's own port); after every burst the service is checked (`ServiceChecks`):
same processes (nothing crashed), OPTIONS answered by the edge and every worker (nothing hangs),
every worker takes as many calls at once as before (no call slot leaked), and a normal SIPp call
through the edge is answered with audio.

    python -m callrouter.devtools.sipfuzz --count 20000 --seed 7 --out bench/results/sip_fuzz.json

runs the long campaign on a service of its own (`make fuzz-sip COUNT=... SEED=...`).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from callrouter.devtools.serve import ServeProcess
from callrouter.devtools.sipfuzz_service import NUMBER, ServiceChecks, start_service
from callrouter.devtools.sipwire import Local, Peer, exchange

UNKNOWN_NUMBER = "+33199999999"
SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 9 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n")
KINDS = ("INVITE", "REGISTER", "BYE")


def base_message(kind: str, local: Local, host: str, port: int, rng: random.Random) -> bytes:
    """A well-formed INVITE (to a number no practice has), REGISTER or out-of-dialog BYE."""
    tag = "%016x" % rng.getrandbits(64)
    via = f"Via: SIP/2.0/{local.transport} {local.ip}:{local.port};branch=z9hG4bK{tag};rport"
    if kind == "REGISTER":
        user = rng.choice(("alice", "secretariat", "100", "admin", "dr-martin"))
        head = [f"REGISTER sip:{host} SIP/2.0", via, "Max-Forwards: 70", f"From: <sip:{user}@{host}>;tag={tag[:8]}",
                f"To: <sip:{user}@{host}>", f"Call-ID: fuzz-{tag}", "CSeq: 1 REGISTER",
                f"Contact: <sip:{user}@{local.ip}:{local.port}>", "Expires: 300", "User-Agent: Linphone/5.2"]
        body = b""
    else:
        number = UNKNOWN_NUMBER
        to_tag = f";tag={tag[8:]}" if kind == "BYE" and rng.random() < 0.7 else ""
        head = [f"{kind} sip:{number}@{host}:{port} SIP/2.0", via, "Max-Forwards: 70",
                f'From: "Patient" <sip:+33612345678@{local.ip}>;tag={tag[:8]}', f"To: <sip:{number}@{host}>{to_tag}",
                f"Call-ID: fuzz-{tag}", f"CSeq: {1 if kind == 'INVITE' else 2} {kind}",
                f"Contact: <sip:caller@{local.ip}:{local.port}>",
                "Diversion: <sip:+33142000001@trunk>;reason=unconditional",
                "P-Asserted-Identity: <sip:+33612345678@trunk>", "X-Trunk-Note: rien"]
        body = SDP if kind == "INVITE" else b""
        if body:
            head.append("Content-Type: application/sdp")
    head.append(f"Content-Length: {len(body)}")
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


# -- mutators: (rng, message) -> message ------------------------------------------------------

def _lines(message: bytes) -> tuple[list[bytes], bytes]:
    head, _, body = message.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


def _join(lines: list[bytes], body: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def flip_bytes(rng: random.Random, m: bytes) -> bytes:
    data = bytearray(m)
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] ^= rng.randint(1, 255)
    return bytes(data)


def cut(rng: random.Random, m: bytes) -> bytes:
    return m[:rng.randrange(1, len(m))] if len(m) > 1 else m


def repeat_header(rng: random.Random, m: bytes) -> bytes:
    lines, body = _lines(m)
    if len(lines) < 2:
        return m
    i = rng.randrange(1, len(lines))
    lines[i:i + 1] = [lines[i]] * rng.choice((2, 3, 10, 60))
    return _join(lines, body)


def huge_value(rng: random.Random, m: bytes) -> bytes:
    lines, body = _lines(m)
    if len(lines) < 2:
        return m
    i = rng.randrange(1, len(lines))
    name = lines[i].partition(b":")[0]
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789;,<>@:\"= "
    lines[i] = name + b": " + bytes(rng.choice(alphabet) for _ in range(rng.choice((300, 2000, 7000))))
    return _join(lines, body)


def non_utf8(rng: random.Random, m: bytes) -> bytes:
    lines, body = _lines(m)
    i = rng.randrange(len(lines))
    where = rng.randrange(len(lines[i]) + 1)
    lines[i] = lines[i][:where] + bytes(rng.randint(0x80, 0xFF) for _ in range(rng.randint(1, 6))) + lines[i][where:]
    return _join(lines, body)


def wrong_content_length(rng: random.Random, m: bytes) -> bytes:
    lines, body = _lines(m)
    value = rng.choice((b"-1", b"0", b"%d" % (len(body) + 1), b"%d" % max(0, len(body) - 7), b"2147483648",
                        b"18446744073709551617", b"", b"abc", b" 12 ", b"0x10", b"99999"))
    lines = [line for line in lines if not line.lower().startswith(b"content-length")] + [b"Content-Length: " + value]
    return _join(lines, body)


def drop_header(rng: random.Random, m: bytes) -> bytes:
    lines, body = _lines(m)
    if len(lines) < 2:
        return m
    del lines[rng.randrange(1, len(lines))]
    return _join(lines, body)


def line_endings(rng: random.Random, m: bytes) -> bytes:
    parts = m.split(b"\r\n")
    out = parts[0]
    for part in parts[1:]:
        out += (rng.choice((b"\n", b"\r", b"\r\r\n", b"\n\r")) if rng.random() < 0.3 else b"\r\n") + part
    return out


def controls(rng: random.Random, m: bytes) -> bytes:
    data = bytearray(m)
    for _ in range(rng.randint(1, 4)):
        data.insert(rng.randrange(len(data)), rng.choice((0, 1, 7, 8, 0x0B, 0x1B, 0x7F)))
    return bytes(data)


def duplicate_slice(rng: random.Random, m: bytes) -> bytes:
    a = rng.randrange(len(m))
    b = min(len(m), a + rng.randint(1, 200))
    return m[:b] + m[a:b] * rng.randint(1, 5) + m[b:]


def numbers(rng: random.Random, m: bytes) -> bytes:
    values = (b"0", b"-1", b"4294967296", b"36893488147419103232", b"00000000000000000000070", b"1e9", b"-0")
    return re.sub(rb"\d+", lambda match: rng.choice(values) if rng.random() < 0.25 else match.group(0), m)


def method_token(rng: random.Random, m: bytes) -> bytes:
    token = rng.choice((b"INVITE", b"BYE", b"ACK", b"CANCEL", b"PRACK", b"OPTIONS", b"XYZZY", b"SIP/2.0",
                        b"invite", b"INV\x00ITE", b"\xc3\xa9T\xc3\xa9"))
    first, sep, rest = m.partition(b" ")
    return token + sep + rest


MUTATORS: dict[str, Callable[[random.Random, bytes], bytes]] = {f.__name__: f for f in (
    flip_bytes, cut, repeat_header, huge_value, non_utf8, wrong_content_length, drop_header, line_endings,
    controls, duplicate_slice, numbers, method_token)}


def mutated(kind: str, names: Iterable[str], local: Local, host: str, port: int, rng: random.Random) -> bytes:
    message = base_message(kind, local, host, port, rng)
    for name in names:
        message = MUTATORS[name](rng, message) or b"\r\n"
    return message[:65000]  # what one UDP datagram carries


@dataclass(frozen=True)
class Case:
    """Message `index` for `target`: its kind and mutators, and the generator that drew them."""

    target: str
    index: int
    kind: str
    mutators: tuple[str, ...]
    seed: int

    def render(self, local: Local, host: str, port: int) -> bytes:
        return mutated(self.kind, self.mutators, local, host, port, random.Random(self.seed))


def cases(seed: int, target: str, start: int, count: int) -> list[Case]:
    """The campaign's messages start..start+count-1 for `target`: the same for the same seed."""
    out = []
    for index in range(start, start + count):
        case_seed = random.Random(f"{seed}/{target}/{index}").getrandbits(64)
        rng = random.Random(case_seed)
        kind = rng.choice(KINDS)
        names = tuple(rng.sample(sorted(MUTATORS), rng.randint(1, 3)))
        out.append(Case(target, index, kind, names, case_seed))
    return out


@dataclass(frozen=True)
class Target:
    """A place the campaign sends to; `outsiders`: each message from its own loopback address
    (a flood from one address is banned at once, which would test nothing after the first 30)."""

    name: str
    peer: Peer
    outsiders: bool = False

    def peer_for(self, index: int) -> Peer:
        if not self.outsiders:
            return self.peer
        return self.peer.with_source(f"127.{100 + (index >> 16) % 100}.{(index >> 8) & 255}.{(index & 255) or 1}")


def send_burst(target: Target, burst: list[Case], threads: int = 24, window: float = 0.3,
               final_timeout: float = 6.0) -> dict[str, int]:
    """Send every case of a burst (at most `threads` in flight); how many got each outcome."""
    def one(case: Case) -> str:
        peer = target.peer_for(case.index)
        try:
            return exchange(peer, lambda local: case.render(local, peer.host, peer.port), window, final_timeout).outcome
        except OSError as exc:  # e.g. a TCP connection refused: the check after the burst says why
            return f"error:{exc.__class__.__name__}"

    outcomes: dict[str, int] = {}
    with ThreadPoolExecutor(threads) as pool:
        for outcome in pool.map(one, burst):
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


@dataclass
class Report:
    seed: int
    sent: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    bursts: int = 0
    crashes: int = 0
    slots_leaked: int = 0
    hangs: int = 0
    calls_failed: int = 0
    problems: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"seed": self.seed, "messages_sent": self.sent, "messages_total": sum(self.sent.values()),
                "outcomes": self.outcomes, "bursts": self.bursts, "crashes": self.crashes,
                "slots_leaked": self.slots_leaked, "hangs": self.hangs, "calls_failed": self.calls_failed,
                "problems": self.problems}


def campaign(targets: list[Target], seed: int, per_target: dict[str, int], burst: int,
             check: Callable[[], dict[str, list[str]]], log: Callable[[str], None] = lambda s: None) -> Report:
    """Bursts of `burst` messages to each target in turn until each has had its count; `check`
    after every burst returns problems by kind ("crash", "hang", "slots", "call")."""
    report = Report(seed)
    offsets = {t.name: 0 for t in targets}
    while any(offsets[t.name] < per_target.get(t.name, 0) for t in targets):
        for target in targets:
            start, total = offsets[target.name], per_target.get(target.name, 0)
            if start >= total:
                continue
            size = min(burst, total - start)
            outcomes = send_burst(target, cases(seed, target.name, start, size))
            offsets[target.name] = start + size
            report.sent[target.name] = start + size
            merged = report.outcomes.setdefault(target.name, {})
            for key, value in outcomes.items():
                merged[key] = merged.get(key, 0) + value
            report.bursts += 1
            found = check()
            for kind, messages in found.items():
                if messages:
                    setattr(report, _COUNTERS[kind], getattr(report, _COUNTERS[kind]) + len(messages))
                    report.problems.append({"target": target.name, "messages": [start, start + size - 1],
                                            "kind": kind, "details": messages})
            log(f"{target.name}: {start + size}/{total} sent, {sum(len(v) for v in found.values())} problem(s)")
    return report


_COUNTERS = {"crash": "crashes", "hang": "hangs", "slots": "slots_leaked", "call": "calls_failed"}


def targets(svc: ServeProcess, trunk_ip: str = "127.0.0.1") -> list[Target]:
    """The campaign's targets on `svc`: the edge from the trunk (UDP, TCP), from outsiders, and
    each worker's own port."""
    sip = svc.config["sip"]
    out = [Target("edge-trunk-udp", Peer("127.0.0.1", sip["udp_port"], source=trunk_ip)),
           Target("edge-trunk-tcp", Peer("127.0.0.1", sip["tcp_port"], "tcp", source=trunk_ip)),
           Target("edge-outsider-udp", Peer("127.0.0.1", sip["udp_port"]), outsiders=True)]
    out += [Target(f"worker-{i}-udp", Peer("127.0.0.1", port)) for i, port in enumerate(svc.worker_ports())]
    return out


def shares(count: int, names: list[str]) -> dict[str, int]:
    """`count` messages shared out: 30% edge from the trunk (UDP), 10% over TCP, 15% from
    outsiders, the rest to the workers in equal parts."""
    edge = {"edge-trunk-udp": 0.30, "edge-trunk-tcp": 0.10, "edge-outsider-udp": 0.15}
    workers = [n for n in names if n not in edge]
    out = {n: int(count * edge[n]) for n in names if n in edge}
    rest = count - sum(out.values())
    out |= {n: rest // len(workers) + (1 if i < rest % len(workers) else 0) for i, n in enumerate(workers)}
    return out


def run_campaign(count: int, seed: int, burst: int, log: Callable[[str], None] = print) -> Report:
    """The long campaign on a service of its own, stopped after (nothing may be left running)."""
    root = Path(tempfile.mkdtemp(prefix="sipfuzz-"))
    svc = start_service(root)
    report = None
    try:
        checks = ServiceChecks(svc, NUMBER, root / "calls")
        log(f"baseline: free call slots per worker {checks.slots}, {len(checks.processes)} processes")
        chosen = targets(svc)
        report = campaign(chosen, seed, shares(count, [t.name for t in chosen]), burst, checks, log)
        return report
    finally:
        stray = svc.stop()
        if stray:
            log(f"processes left running after stop: {stray}")
        if report is not None and not report.problems:
            shutil.rmtree(root, ignore_errors=True)
        else:
            log(f"the service's files and log are kept in {root}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m callrouter.devtools.sipfuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20000, help="messages in all, shared by the targets")
    parser.add_argument("--seed", type=int, default=4475)
    parser.add_argument("--burst", type=int, default=400, help="messages to one target between two checks")
    parser.add_argument("--out", default="bench/results/sip_fuzz.json")
    args = parser.parse_args(argv)
    started = time.monotonic()
    report = run_campaign(args.count, args.seed, args.burst, log=lambda s: print(s, flush=True))
    result = report.as_json() | {"count": args.count, "burst": args.burst,
                                  "ran_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                  "seconds": round(time.monotonic() - started, 1)}
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump(result, out, indent=2, ensure_ascii=False)
        out.write("\n")
    print(f"{result['messages_total']} messages, {report.crashes} crashes, {report.slots_leaked} slots leaked, "
          f"{report.hangs} hangs, {report.calls_failed} failed calls: {args.out}")
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
