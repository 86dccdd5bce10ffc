"""SMS through an SMSC over SMPP 3.4, written on Twisted (no blocking library).

One transceiver bind (`bind_transceiver`) carries everything: `submit_sm` out, delivery receipts
and practitioners' replies in (`deliver_sm`), `enquire_link` both ways as a keepalive. The
connection is a `ClientService`: it reconnects with a backoff when the SMSC goes away, and binds
again. A message is sent in the GSM 03.38 alphabet when it can be (é, è, à, ù are in it), else in
UCS-2; a long one is split with a UDH (concatenated SMS, one `submit_sm` per part) or, with
`smpp_long_messages: payload`, sent whole in the `message_payload` TLV for the SMSC to split.

The provider id stored for a step is the SMSC's message id of the first part. Receipts feed the
same path as the HTTP gateway's delivery-report webhook (`EscalationRepository.mark_delivered`),
replies the same path as its inbound-SMS webhook (`Acknowledger.by_sms`).

Why not a library: the maintained Python SMPP clients (smpplib, python-smpp) block on sockets and
would need a thread per bind plus their own reconnection; the protocol subset we need is small.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import re
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer, protocol, task
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS

from callrouter.domain.call import mask_number
from callrouter.escalation.channels import ChannelError, RunBlocking
from callrouter.escalation.messages import Message
from callrouter.escalation.settings import EscalationSettings

logger = logging.getLogger(__name__)

# --- PDUs ---------------------------------------------------------------------------------------

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


# --- the client ----------------------------------------------------------------------------------

class SmppClientProtocol(protocol.Protocol):
    """One bind: requests out with their sequence numbers, PDUs in dispatched by command."""

    def __init__(self, channel: "SmppChannel") -> None:
        self.channel = channel
        self.bound = False
        self._reader = PduReader()
        self._sequence = itertools.count(1)
        self._pending: dict[int, defer.Deferred] = {}
        self._keepalive: task.LoopingCall | None = None

    def connectionMade(self) -> None:
        s = self.channel.settings
        d = self.request(BIND_TRANSCEIVER, bind_body(s.smpp_system_id or "", s.smpp_password or "",
                                                      s.smpp_system_type or ""))
        d.addCallbacks(self._bind_answer, self._bind_failed)

    def _bind_answer(self, answer: tuple[int, bytes]) -> None:
        status, _ = answer
        if status != ESME_ROK:
            logger.error("SMSC refused the bind (status 0x%08x): check smpp_system_id and smpp_password", status)
            self.transport.loseConnection()
            return
        self.bound = True
        logger.info("SMSC bound as transceiver")
        self._keepalive = task.LoopingCall(self._enquire)
        self._keepalive.clock = self.channel.reactor
        self._keepalive.start(self.channel.settings.smpp_enquire_link_seconds, now=False)
        self.channel._bound(self)

    def _bind_failed(self, failure) -> None:
        logger.warning("SMSC bind failed: %s", failure.getErrorMessage())
        self.transport.loseConnection()

    def _enquire(self) -> None:
        def lost(failure):
            logger.warning("SMSC did not answer enquire_link: reconnecting")
            self.transport.abortConnection() if hasattr(self.transport, "abortConnection") \
                else self.transport.loseConnection()
        self.request(ENQUIRE_LINK).addErrback(lost)

    def request(self, command_id: int, body: bytes = b"") -> "defer.Deferred[tuple[int, bytes]]":
        sequence = next(self._sequence)
        d: defer.Deferred = defer.Deferred()
        self._pending[sequence] = d
        d.addTimeout(self.channel.settings.http_timeout_seconds, self.channel.reactor)
        d.addBoth(lambda r: (self._pending.pop(sequence, None), r)[1])
        self.transport.write(Pdu(command_id, 0, sequence, body).encode())
        return d

    def respond(self, command_id: int, sequence: int, body: bytes = b"", status: int = ESME_ROK) -> None:
        self.transport.write(Pdu(command_id, status, sequence, body).encode())

    def dataReceived(self, data: bytes) -> None:
        try:
            pdus = self._reader.feed(data)
        except ValueError as exc:
            logger.error("SMSC sent a malformed PDU (%s): reconnecting", exc)
            self.transport.loseConnection()
            return
        for pdu in pdus:
            self._dispatch(pdu)

    def _dispatch(self, pdu: Pdu) -> None:
        if pdu.command_id & 0x80000000:
            d = self._pending.get(pdu.sequence)
            if d is not None and not d.called:
                d.callback((pdu.status, pdu.body))
        elif pdu.command_id == DELIVER_SM:
            try:
                sm = parse_sm(pdu.body)
            except (ValueError, IndexError):
                logger.warning("SMSC sent a deliver_sm we cannot read")
                self.respond(DELIVER_SM_RESP, pdu.sequence, b"\x00", ESME_RSYSERR)
                return
            self.respond(DELIVER_SM_RESP, pdu.sequence, b"\x00")
            self.channel.inbound(sm)
        elif pdu.command_id == ENQUIRE_LINK:
            self.respond(ENQUIRE_LINK_RESP, pdu.sequence)
        elif pdu.command_id == UNBIND:
            self.respond(UNBIND_RESP, pdu.sequence)
            self.transport.loseConnection()
        else:
            self.respond(GENERIC_NACK, pdu.sequence, status=ESME_RINVCMDID)

    def connectionLost(self, reason=None) -> None:
        self.bound = False
        if self._keepalive is not None and self._keepalive.running:
            self._keepalive.stop()
        for d in list(self._pending.values()):
            if not d.called:
                d.errback(ChannelError("SMSC connection lost"))
        self._pending.clear()
        self.channel._unbound(self)

    @defer.inlineCallbacks
    def submit(self, source: str, destination: str, text: str, long_messages: str, reference: int):
        """Send `text`; fires with the SMSC's message id of the first part."""
        if long_messages == "payload":
            coding, payload = whole(text)
            bodies = [sm_body(source, destination, 0, coding, 1, b"", {TLV_MESSAGE_PAYLOAD: payload})]
        else:
            coding, parts = encode_parts(text)
            if len(parts) == 1:
                bodies = [sm_body(source, destination, 0, coding, 1, parts[0])]
            else:
                bodies = [sm_body(source, destination, ESM_UDHI, coding, 1,
                                  bytes([5, 0, 3, reference & 0xFF, len(parts), n]) + part)
                          for n, part in enumerate(parts, 1)]
        first = None
        for body in bodies:
            status, answer = yield self.request(SUBMIT_SM, body)
            if status != ESME_ROK:
                raise ChannelError(f"SMSC refused the message (status 0x{status:08x})")
            message_id, _ = read_cstring(answer, 0) if answer else ("", 0)
            first = first or message_id or None
        return first


class SmppChannel:
    """The `sms` channel on an SMPP transceiver bind; start/stop it with the service tree."""

    def __init__(self, settings: EscalationSettings, reactor: Any, endpoint: Any = None) -> None:
        if not settings.smpp_host:
            raise ValueError("SmppChannel needs escalation.smpp_host")
        self.settings = settings
        self.reactor = reactor
        self._protocol: SmppClientProtocol | None = None
        self._waiters: list[defer.Deferred] = []
        self._references = itertools.count(1)
        self.on_receipt: Callable[[str, str], Any] | None = None  # (message id, state)
        self.on_reply: Callable[[str, str], Any] | None = None    # (sender +33..., text)
        factory = protocol.Factory.forProtocol(lambda: SmppClientProtocol(self))
        self._service = ClientService(endpoint or self._endpoint(), factory,
                                      retryPolicy=backoffPolicy(initialDelay=settings.smpp_reconnect_seconds,
                                                                maxDelay=60.0),
                                      clock=reactor)

    def _endpoint(self) -> Any:
        s = self.settings
        tcp = HostnameEndpoint(self.reactor, s.smpp_host, s.smpp_port, timeout=s.http_timeout_seconds)
        if not s.smpp_tls:
            return tcp
        try:
            from twisted.internet import ssl  # needs pyOpenSSL: Twisted's "tls" extra
        except ImportError:
            raise ValueError("escalation.smpp_tls needs Twisted's TLS support: pip install 'Twisted[tls]'") from None
        trust = None
        if s.smpp_cafile is not None:
            trust = ssl.Certificate.loadPEM(s.smpp_cafile.read_bytes())
        return wrapClientTLS(ssl.optionsForClientTLS(s.smpp_host, trustRoot=trust), tcp)

    # --- service ---------------------------------------------------------------------------------

    def startService(self) -> None:
        self._service.startService()

    def stopService(self) -> "defer.Deferred[None]":
        p = self._protocol
        if p is not None and p.bound:
            p.request(UNBIND).addErrback(lambda _: None)
        return self._service.stopService()

    @property
    def running(self) -> bool:
        return bool(self._service.running)

    # --- the bind --------------------------------------------------------------------------------

    def _bound(self, p: SmppClientProtocol) -> None:
        self._protocol = p
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(p)

    def _unbound(self, p: SmppClientProtocol) -> None:
        if self._protocol is p:
            self._protocol = None

    def when_bound(self) -> "defer.Deferred[SmppClientProtocol]":
        if self._protocol is not None and self._protocol.bound:
            return defer.succeed(self._protocol)
        d: defer.Deferred = defer.Deferred(lambda d: self._waiters.remove(d) if d in self._waiters else None)
        self._waiters.append(d)
        return d

    # --- Channel ---------------------------------------------------------------------------------

    def send(self, message: Message) -> "defer.Deferred[str | None]":
        s = self.settings
        d = self.when_bound()
        d.addTimeout(s.http_timeout_seconds, self.reactor)

        def not_bound(failure):
            failure.trap(defer.TimeoutError, defer.CancelledError)
            raise ChannelError("SMSC not bound (unreachable, or refusing the bind)")

        d.addErrback(not_bound)
        d.addCallback(lambda p: p.submit(s.smpp_source_addr or "callrouter", message.to, message.text,
                                         s.smpp_long_messages, next(self._references)))
        d.addErrback(self._failed)
        return d

    @staticmethod
    def _failed(failure):
        if failure.check(ChannelError):
            return failure
        raise ChannelError(f"SMPP: {failure.getErrorMessage() or failure.type.__name__}")

    def inbound(self, sm: ShortMessage) -> None:
        """A deliver_sm: a delivery receipt, or a practitioner's reply."""
        found = receipt(sm)
        if found is not None:
            message_id, state = found
            logger.info("SMSC receipt for %s: %s", message_id, state)
            if self.on_receipt is not None:
                self.on_receipt(message_id, state)
            return
        sender = e164(sm.source_ton, sm.source)
        logger.info("SMS reply from %s", mask_number(sender))
        if self.on_reply is not None:
            self.on_reply(sender, sm.text)


def connect_inbound(channel: SmppChannel, repo: Any, acknowledger: Any, now: Callable[[], dt.datetime],
                    run_blocking: RunBlocking) -> None:
    """Receipts and replies take the webhooks' paths: `repo.mark_delivered` for a DELIVRD receipt,
    `acknowledger.by_sms` for a reply (a reply from a number the chain reached acknowledges it)."""

    def receipt_(message_id: str, state: str):
        if state != "DELIVRD":
            return None
        d = run_blocking(repo.mark_delivered, message_id)
        d.addErrback(lambda f: logger.error("delivery receipt not stored: %s", f.getErrorMessage()))
        return d

    def reply(sender: str, text: str):
        d = run_blocking(acknowledger.by_sms, sender, now())
        d.addErrback(lambda f: logger.error("SMS reply not processed: %s", f.getErrorMessage()))
        return d

    channel.on_receipt, channel.on_reply = receipt_, reply


__all__ = ["SmppChannel", "connect_inbound", "encode_parts", "parse_sm", "receipt", "Pdu", "PduReader"]
