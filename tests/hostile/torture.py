"""The torture messages of tests/hostile/messages/ and what each must get, as its README says.

A message file is text with `\\n` line ends (each sent as CRLF) and placeholders filled in when it
is sent, so that it reaches the target and its answers come back to the sending socket:

    ${HOST} ${PORT}      the target          ${SRC} ${LPORT} ${TRANSPORT}   the sending socket
    ${UNKNOWN}           a number no practice has    ${KNOWN}   the test practice's number
    ${KNOWNDIGITS}       that number without its +
    ${CALLID} ${TAG} ${BRANCH}   fresh for each send (${BRANCH} with the RFC 3261 magic cookie)
    ${LEN}               the body's length in bytes, once every other placeholder is filled in
    ${0xNN}              the byte NN (non-UTF-8 bytes, controls)      ${LF} ${CR}   a bare LF, CR
    ${REPEAT:n:text}     text repeated n times

The README's table is the contract: one row per file, with the outcome expected at each target
("404", "drop" for no answer at all...). The tests read it, so the documentation cannot drift from
what is asserted.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from callrouter.devtools.sipwire import Local

MESSAGES = Path(__file__).resolve().parent / "messages"
README = MESSAGES / "README.md"
TARGETS = ("trunk-udp", "trunk-tcp", "outsider-udp", "worker-udp")
UNKNOWN_NUMBER = "+33199999999"

_PLACEHOLDER = re.compile(rb"\$\{([A-Z]+|0x[0-9a-fA-F]{2}|REPEAT:\d+:[^}]*)\}")


@dataclass(frozen=True)
class Case:
    name: str
    category: str
    exercises: str
    expected: dict[str, str]  # target -> outcome

    @property
    def path(self) -> Path:
        return MESSAGES / f"{self.name}.sip"


def render(template: bytes, local: Local, host: str, port: int, known: str) -> bytes:
    """The message to send from `local` to (host, port)."""
    tag = "%016x" % random.getrandbits(64)
    values = {b"HOST": host.encode(), b"PORT": str(port).encode(), b"SRC": local.ip.encode(),
              b"LPORT": str(local.port).encode(), b"TRANSPORT": local.transport.encode(),
              b"UNKNOWN": UNKNOWN_NUMBER.encode(), b"KNOWN": known.encode(),
              b"KNOWNDIGITS": known.lstrip("+").encode(), b"CALLID": f"torture-{tag}".encode(),
              b"TAG": tag[:10].encode(), b"BRANCH": f"z9hG4bK{tag}".encode(), b"LF": b"\n", b"CR": b"\r"}

    def fill(match: re.Match) -> bytes:
        key = match.group(1)
        if key.startswith(b"0x"):
            return bytes([int(key[2:], 16)])
        if key.startswith(b"REPEAT:"):
            _, count, text = key.split(b":", 2)
            return text * int(count)
        return values.get(key, match.group(0))

    text = template.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    text = _PLACEHOLDER.sub(fill, text)  # ${LEN} is left as it is, for the last step
    head, sep, body = text.partition(b"\r\n\r\n")
    return (head + sep).replace(b"${LEN}", str(len(body)).encode()) + body


def cases() -> list[Case]:
    """The README's table, one Case per row (the columns: file, category, exercises, then one per
    target in TARGETS order)."""
    out = []
    for line in README.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 + len(TARGETS) or not cells[0].startswith("`"):
            continue
        name = cells[0].strip("`").removesuffix(".sip")
        out.append(Case(name, cells[1], cells[2], dict(zip(TARGETS, (c.strip("`") for c in cells[3:])))))
    return out
