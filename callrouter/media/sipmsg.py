"""Read what the controller needs out of a received INVITE's text. Pure: no pjsua2.

pjsua2 hands the worker the whole request as text (`SipRxData.wholeMsg`); the worker reports the
dialled number, the caller and a few selected headers. Anything unparsable degrades to empty
strings: a strange INVITE is still a call to report, never a crash.

SIP does not make its headers UTF-8, and SWIG decodes the message's bytes with `surrogateescape`:
a Latin-1 display name arrives as lone surrogates, which no UTF-8 line can carry. `sip_text` turns
every byte that is not UTF-8 into U+FFFD, and every other control character (C0 but tab and line
breaks, DEL, C1, U+2028/U+2029) into a space, before anything is read out of the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping
from urllib.parse import unquote

# Headers reported with an incoming call, beside every X- header: they carry the number the
# practice's line was forwarded from and the caller's asserted identity.
DEFAULT_REPORTED = ("Diversion", "History-Info", "P-Asserted-Identity", "Privacy", "Referred-By")
MAX_HEADER_VALUE = 1024
MAX_REPORTED = 32

_COMPACT = {"f": "From", "t": "To", "i": "Call-ID", "m": "Contact"}
_URI_USER = re.compile(r"sips?:([^@;>?\s:]+)@|tel:([^;>?\s]+)", re.IGNORECASE)
_DISPLAY = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<')


@dataclass(frozen=True)
class InviteSummary:
    request_uri: str = ""
    from_uri: str = ""
    to_uri: str = ""
    call_id: str = ""
    number: str = ""
    caller: str = ""
    caller_name: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


# C0 controls but tab and line breaks, DEL, the C1 controls (U+0085 is a line break to some log
# readers) and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def sip_text(raw: str | bytes) -> str:
    """A received SIP message as safe text: valid UTF-8 kept, any other byte as U+FFFD."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape" if raw.isascii() or _escaped_only(raw) else "replace")
    return _CONTROL.sub(" ", raw.decode("utf-8", "replace"))


def _escaped_only(text: str) -> bool:
    """True when every surrogate in `text` is one `surrogateescape` made (U+DC80..U+DCFF)."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def uri_user(value: str) -> str:
    """The user part of the first SIP/tel URI in a header value ('' when there is none), its
    %-escapes decoded (RFC 3261 19.1.4: sip:%2B33...@ is the same URI as sip:+33...@); a control
    character an escape made (%00) becomes a space, as in the rest of the text."""
    match = _URI_USER.search(value or "")
    if not match:
        return ""
    user = match.group(1) or match.group(2)
    return _ANY_CONTROL.sub(" ", unquote(user, errors="replace")) if "%" in user else user


def display_name(value: str) -> str:
    match = _DISPLAY.match(value or "")
    if not match:
        return ""
    name = match.group(1) if match.group(1) is not None else match.group(2)
    return (name or "").replace('\\"', '"').strip()


def summarise_invite(text: str, reported: Iterable[str] = DEFAULT_REPORTED) -> InviteSummary:
    """Request URI, From, To, Call-ID, the dialled number (request URI user), the caller (From
    user and display name), and the reported headers (first value of each, bounded)."""
    head = sip_text(text or "").replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")
    request_line = lines[0].split() if lines else []
    request_uri = request_line[1] if len(request_line) >= 3 else ""
    wanted = {name.lower(): name for name in reported}
    values: dict[str, str] = {}
    reported_names: dict[str, str] = {}  # lower-case key -> name as reported
    current: str | None = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and current is not None:  # folded continuation line
            values[current] = (values[current] + " " + line.strip())[:MAX_HEADER_VALUE]
            continue
        name, sep, value = line.partition(":")
        if not sep:
            current = None
            continue
        name = name.strip()
        name = _COMPACT.get(name.lower(), name) if len(name) == 1 else name
        key = name.lower()
        current = key
        if key not in values:
            values[key] = value.strip()[:MAX_HEADER_VALUE]
            if (key in wanted or key.startswith("x-")) and len(reported_names) < MAX_REPORTED:
                reported_names[key] = wanted.get(key, name)
        else:
            current = None
    from_value = values.get("from", "")
    return InviteSummary(
        request_uri=request_uri,
        from_uri=from_value,
        to_uri=values.get("to", ""),
        call_id=values.get("call-id", ""),
        number=uri_user(request_uri) or uri_user(values.get("to", "")),
        caller=uri_user(from_value),
        caller_name=display_name(from_value),
        headers={name: values[key] for key, name in reported_names.items()},
    )
