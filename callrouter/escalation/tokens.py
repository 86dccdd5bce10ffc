"""Signed acknowledgement links: the token names the escalation and the step that carried it.

token = "<escalation>-<round>-<step>-<hmac>" where hmac is HMAC-SHA256(secret) truncated to 128 bits.
It is "one-time" in effect: the first acknowledgement ends the chain, later uses change nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

_TOKEN = re.compile(r"^(\d{1,12})-(\d{1,4})-(\d{1,4})-([0-9a-f]{32})$")


@dataclass(frozen=True)
class AckToken:
    escalation_id: int
    round: int
    step: int


def _mac(secret: str, escalation_id: int, rnd: int, step: int) -> str:
    msg = f"ack:{escalation_id}:{rnd}:{step}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()[:32]


def sign(secret: str, escalation_id: int, rnd: int, step: int) -> str:
    return f"{escalation_id}-{rnd}-{step}-{_mac(secret, escalation_id, rnd, step)}"


def verify(secret: str, token: str) -> AckToken | None:
    """The token's content if its signature is right, else None."""
    m = _TOKEN.match(token)
    if m is None:
        return None
    eid, rnd, step = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not hmac.compare_digest(m.group(4), _mac(secret, eid, rnd, step)):
        return None
    return AckToken(eid, rnd, step)
