"""MQTT topic names, one function each (documented in docs/events.md).

Every variable part goes through `segment()`, so a topic level never contains `/`, `+`, `#` or
other surprises. No topic ever carries a phone number: call ids are opaque, secretaries are named
by their login (`secretary_id`), and a login that is itself a number is replaced by a hash.
"""

from __future__ import annotations

import hashlib
import re

PREFIX = "callrouter"

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")
_PHONE_LIKE = re.compile(r"^\+?[0-9][0-9 .()-]{5,}$")


def segment(text: str) -> str:
    """One topic level: letters, digits, `.`, `_`, `-` and `@` kept; anything else becomes `_`."""
    cleaned = _UNSAFE.sub("_", text.strip())
    return cleaned or "_"


def secretary_id(uri: str) -> str:
    """The topic name of a secretary from her SIP URI: the user part (her login).

    `sip:alice@10.0.0.5:5060;transport=tls` -> `alice`. A user part that looks like a phone
    number (`sip:+33612345678@trunk`) is never put in a topic: it becomes `n-` and a short hash.
    """
    user = uri.strip()
    for scheme in ("sips:", "sip:", "tel:"):
        if user.lower().startswith(scheme):
            user = user[len(scheme):]
            break
    user = user.split(";", 1)[0].split("@", 1)[0] or uri
    if _PHONE_LIKE.match(user):
        return "n-" + hashlib.sha256(user.encode()).hexdigest()[:12]
    return segment(user)


def status(node: str) -> str:
    """Retained: the node's connection status (online; offline is also its last will)."""
    return f"{PREFIX}/{segment(node)}/status"


def call_state(node: str, call_id: str) -> str:
    """A call's state changes: arrived, ivr, queued, offered, answered, ended."""
    return f"{PREFIX}/{segment(node)}/calls/{segment(call_id)}/state"


def queue(node: str, practice: str, queue_name: str) -> str:
    """Retained: a practice queue's waiting count and longest wait."""
    return f"{PREFIX}/{segment(node)}/queues/{segment(practice)}/{segment(queue_name)}"


def secretary_state(node: str, secretary: str) -> str:
    """Retained: a secretary's state (offline, available, ringing, on_call, wrap_up, paused)."""
    return f"{PREFIX}/{segment(node)}/secretaries/{segment(secretary)}/state"


def screen_pop(node: str, secretary: str) -> str:
    """The offer shown on a secretary's screen before her phone rings (QoS 1, not retained)."""
    return f"{PREFIX}/{segment(node)}/secretaries/{segment(secretary)}/screen-pop"


def practice_card(node: str, practice: str) -> str:
    """Retained: the practice card (sites, diary, consultation types, instructions)."""
    return f"{PREFIX}/{segment(node)}/practices/{segment(practice)}/card"


def practice_tasks(node: str, practice: str) -> str:
    """A practice's callback task was created or changed state (QoS 1, not retained): consoles
    refresh their task list."""
    return f"{PREFIX}/{segment(node)}/practices/{segment(practice)}/tasks"


def team(node: str) -> str:
    """Retained: the team's version, published after each change of coverage, skill levels or
    pause reasons (wallboards read the team again)."""
    return f"{PREFIX}/{segment(node)}/team"


def escalation_changed(node: str, practice: str) -> str:
    """A chain of the practice changed: started, a step claimed, sent, delivered or failed, a reply,
    acknowledged, ended, taken in hand (QoS 1, not retained): wallboards read the chains again."""
    return f"{PREFIX}/{segment(node)}/escalations/{segment(practice)}/changed"


def escalation_exhausted(node: str, practice: str) -> str:
    """An escalation chain ended with nobody acknowledging: for the secretariat's supervisors
    (QoS 1, not retained)."""
    return f"{PREFIX}/{segment(node)}/escalations/{segment(practice)}/exhausted"


def forwarding_watch(node: str, practice: str) -> str:
    """A forwarding watch of the practice started, gave its verdict (passed, failed) or was
    acknowledged (QoS 1, not retained): wallboards read the watch again, a failure shows in red."""
    return f"{PREFIX}/{segment(node)}/practices/{segment(practice)}/forwarding-watch"
