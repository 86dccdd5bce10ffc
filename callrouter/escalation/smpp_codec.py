"""SMPP 3.4 as values: PDUs in and out of a byte stream, addresses, the GSM 03.38 and UCS-2
encodings with long messages cut into parts, short messages and delivery receipts. Pure: no
network, no clock (callrouter.escalation.smpp is the client)."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

GENERIC_NACK = 0x80000000
BIND_TRANSCEIVER, BIND_TRANSCEIVER_RESP = 0x00000009, 0x80000009
SUBMIT_SM, SUBMIT_SM_RESP = 0x00000004, 0x80000004
DELIVER_SM, DELIVER_SM_RESP = 0x00000005, 0x80000005
UNBIND, UNBIND_RESP = 0x00000006, 0x80000006
ENQUIRE_LINK, ENQUIRE_LINK_RESP = 0x00000015, 0x80000015
ESME_ROK, ESME_RINVCMDID, ESME_RSYSERR = 0x00000000, 0x00000003, 0x00000008
TLV_MESSAGE_PAYLOAD, TLV_RECEIPTED_MESSAGE_ID, TLV_MESSAGE_STATE = 0x0424, 0x001E, 0x0427
MESSAGE_STATES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD",
                  7: "UNKNOWN", 8: "REJECTD"}
DC_GSM, DC_LATIN1, DC_UCS2 = 0x00, 0x03, 0x08
ESM_UDHI, ESM_RECEIPT = 0x40, 0x04
MAX_PDU = 64 * 1024


@dataclass(frozen=True)
class Pdu:
    command_id: int
    status: int
    sequence: int
    body: bytes = b""

    def encode(self) -> bytes:
        return struct.pack(">IIII", 16 + len(self.body), self.command_id, self.status, self.sequence) + self.body


class PduReader:
    """Cuts a byte stream into PDUs; ValueError on a length no SMSC would send."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[Pdu]:
        self._buffer += data
        out = []
        while len(self._buffer) >= 16:
            length, command_id, status, sequence = struct.unpack(">IIII", self._buffer[:16])
            if not 16 <= length <= MAX_PDU:
                raise ValueError(f"PDU length {length}")
            if len(self._buffer) < length:
                break
            out.append(Pdu(command_id, status, sequence, self._buffer[16:length]))
            self._buffer = self._buffer[length:]
        return out


def cstring(value: str | bytes, limit: int) -> bytes:
    raw = value.encode("ascii", "replace") if isinstance(value, str) else value
    return raw[: limit - 1] + b"\x00"


def read_cstring(body: bytes, offset: int) -> tuple[str, int]:
    end = body.index(b"\x00", offset)
    return body[offset:end].decode("ascii", "replace"), end + 1


def bind_body(system_id: str, password: str, system_type: str = "") -> bytes:
    return (cstring(system_id, 16) + cstring(password, 9) + cstring(system_type, 13)
            + bytes([0x34, 0, 0]) + cstring("", 41))


def address(number: str) -> tuple[int, int, str]:
    """(TON, NPI, address): +E.164 is international/ISDN; a name is alphanumeric."""
    if number.startswith("+") and number[1:].isdigit():
        return 1, 1, number[1:]
    if number.isdigit():
        return (1, 1, number) if len(number) > 8 else (3, 0, number)  # short codes: network specific
    return 5, 0, number  # alphanumeric sender id (at most 11 characters)


def e164(ton: int, addr: str) -> str:
    """An inbound source address as we store destinations (+33...)."""
    digits = addr.lstrip("+")
    if ton == 1 or addr.startswith("+"):
        return "+" + digits
    if len(digits) == 10 and digits.startswith("0"):
        return "+33" + digits[1:]  # a French national number
    return addr


# --- text: GSM 03.38 or UCS-2, split into parts ---------------------------------------------------

GSM_BASIC = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
             "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D, "]": 0x3E,
                 "|": 0x40, "€": 0x65}
_GSM_CODE = {c: i for i, c in enumerate(GSM_BASIC) if c != "\x1b"}
_GSM_CHAR = {i: c for c, i in _GSM_CODE.items()}
_GSM_EXT_CHAR = {v: k for k, v in GSM_EXTENSION.items()}
assert len(GSM_BASIC) == 128


def gsm_septets(text: str) -> list[bytes] | None:
    """Each character as its GSM 03.38 septets (one byte each, unpacked), or None if one is missing."""
    out = []
    for c in text:
        if c in _GSM_CODE:
            out.append(bytes([_GSM_CODE[c]]))
        elif c in GSM_EXTENSION:
            out.append(bytes([0x1B, GSM_EXTENSION[c]]))
        else:
            return None
    return out


def gsm_decode(data: bytes) -> str:
    out, escape = [], False
    for b in data:
        if escape:
            out.append(_GSM_EXT_CHAR.get(b, " "))
            escape = False
        elif b == 0x1B:
            escape = True
        else:
            out.append(_GSM_CHAR.get(b & 0x7F, "?"))
    return "".join(out)


def decode_text(data_coding: int, payload: bytes) -> str:
    if data_coding == DC_UCS2:
        return payload.decode("utf-16-be", "replace")
    if data_coding == DC_LATIN1:
        return payload.decode("latin-1")
    if data_coding == DC_GSM:
        return gsm_decode(payload)
    return payload.decode("ascii", "replace")


def encode_parts(text: str) -> tuple[int, list[bytes]]:
    """(data_coding, parts): one part if it fits in a single SMS, else parts sized for a UDH."""
    septets = gsm_septets(text)
    if septets is not None:
        return DC_GSM, _pack(septets, single=160, part=153)
    return DC_UCS2, _pack([c.encode("utf-16-be") for c in text], single=140, part=134)


def _pack(chunks: list[bytes], single: int, part: int) -> list[bytes]:
    """Concatenate chunks into parts of at most `single` (one SMS) or `part` bytes, never cutting
    a chunk (an escape pair, a surrogate pair)."""
    total = sum(map(len, chunks))
    if total <= single:
        return [b"".join(chunks)]
    parts, current = [], b""
    for chunk in chunks:
        if len(current) + len(chunk) > part:
            parts.append(current)
            current = b""
        current += chunk
    return parts + ([current] if current else [])


def whole(text: str) -> tuple[int, bytes]:
    """(data_coding, payload) for one message_payload TLV."""
    septets = gsm_septets(text)
    if septets is not None:
        return DC_GSM, b"".join(septets)
    return DC_UCS2, text.encode("utf-16-be")


@dataclass(frozen=True)
class ShortMessage:
    """The fields of a submit_sm or deliver_sm we use."""

    source_ton: int
    source: str
    destination: str
    esm_class: int
    data_coding: int
    registered_delivery: int
    payload: bytes
    tlvs: dict[int, bytes] = field(default_factory=dict)

    @property
    def text(self) -> str:
        data = self.payload
        if self.esm_class & ESM_UDHI and data:
            data = data[1 + data[0]:]
        return decode_text(self.data_coding, data)


def sm_body(source: str, destination: str, esm_class: int, data_coding: int, registered_delivery: int,
            short_message: bytes, tlvs: dict[int, bytes] | None = None) -> bytes:
    s_ton, s_npi, s_addr = address(source)
    d_ton, d_npi, d_addr = address(destination)
    body = (cstring("", 6) + bytes([s_ton, s_npi]) + cstring(s_addr, 21) + bytes([d_ton, d_npi])
            + cstring(d_addr, 21) + bytes([esm_class, 0, 0]) + cstring("", 17) + cstring("", 17)
            + bytes([registered_delivery, 0, data_coding, 0, len(short_message)]) + short_message)
    for tag, value in (tlvs or {}).items():
        body += struct.pack(">HH", tag, len(value)) + value
    return body


def parse_sm(body: bytes) -> ShortMessage:
    _, i = read_cstring(body, 0)
    s_ton = body[i]
    source, i = read_cstring(body, i + 2)
    destination, i = read_cstring(body, i + 2)
    esm_class = body[i]
    _, i = read_cstring(body, i + 3)  # schedule_delivery_time
    _, i = read_cstring(body, i)      # validity_period
    registered_delivery, data_coding, length = body[i], body[i + 2], body[i + 4]
    payload = body[i + 5:i + 5 + length]
    i += 5 + length
    tlvs = {}
    while i + 4 <= len(body):
        tag, size = struct.unpack(">HH", body[i:i + 4])
        tlvs[tag] = body[i + 4:i + 4 + size]
        i += 4 + size
    if not payload and TLV_MESSAGE_PAYLOAD in tlvs:
        payload = tlvs[TLV_MESSAGE_PAYLOAD]
    return ShortMessage(s_ton, source, destination, esm_class, data_coding, registered_delivery, payload, tlvs)


_RECEIPT = re.compile(r"\bid:(\S+).*?\bstat:(\w+)", re.IGNORECASE | re.DOTALL)


def receipt(sm: ShortMessage) -> tuple[str, str] | None:
    """(message id, final state such as DELIVRD) of a delivery receipt, or None."""
    if not sm.esm_class & ESM_RECEIPT:
        return None
    mid = sm.tlvs.get(TLV_RECEIPTED_MESSAGE_ID)
    state = sm.tlvs.get(TLV_MESSAGE_STATE)
    m = _RECEIPT.search(sm.text)
    message_id = mid.rstrip(b"\x00").decode("ascii", "replace") if mid else (m.group(1) if m else None)
    status = MESSAGE_STATES.get(state[0]) if state else (m.group(2).upper() if m else None)
    return (message_id, status) if message_id and status else None
