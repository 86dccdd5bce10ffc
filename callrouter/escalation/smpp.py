"""SMS through an SMSC over SMPP 3.4, written on Twisted (no blocking library).

One transceiver bind (`bind_transceiver`) carries everything: `submit_sm` out, delivery receipts
and practitioners' replies in (`deliver_sm`), `enquire_link` both ways as a keepalive. The
connection is a `ClientService`: it reconnects with a backoff when the SMSC goes away, and binds
again. A message is sent in the GSM 03.38 alphabet when it can be (é, è, à, ù are in it), else in
UCS-2; a long one is split with a UDH (concatenated SMS, one `submit_sm` per part) or, with
`smpp_long_messages: payload`, sent whole in the `message_payload` TLV for the SMSC to split.

The provider id stored for a step is the SMSC's message id of the first part. Receipts feed the
same path as the HTTP gateway's delivery-report webhook (`EscalationRepository.mark_delivered`),
replies the same path as its inbound-SMS webhook (`Acknowledger.by_sms`, which reads them: only an
explicit yes acknowledges, a refusal declines).

Why not a library: the maintained Python SMPP clients (smpplib, python-smpp) block on sockets and
would need a thread per bind plus their own reconnection; the protocol subset we need is small.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer, protocol, task
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS

from callrouter.domain.call import mask_number
from callrouter.escalation.ack import Acknowledger
from callrouter.escalation.messages import Message
from callrouter.escalation.ports import AckStore, ChannelError
from callrouter.escalation.settings import EscalationSettings
from callrouter.escalation.smpp_codec import (
    BIND_TRANSCEIVER, DELIVER_SM, DELIVER_SM_RESP, ENQUIRE_LINK, ENQUIRE_LINK_RESP, ESM_UDHI, ESME_RINVCMDID,
    ESME_ROK, ESME_RSYSERR, GENERIC_NACK, SUBMIT_SM, TLV_MESSAGE_PAYLOAD, UNBIND, UNBIND_RESP, Pdu, PduReader,
    ShortMessage, bind_body, e164, encode_parts, parse_sm, read_cstring, receipt, sm_body, whole,
)
from callrouter.ports import Clock, RunBlocking, utc_from_clock

logger = logging.getLogger(__name__)


class SmppClientProtocol(protocol.Protocol):
    """One bind: requests out with their sequence numbers, PDUs in dispatched by command."""

    def __init__(self, channel: "SmppChannel", service: Any = None) -> None:
        """`service`: the ClientService (of the settings) it is made for."""
        self.channel = channel
        self.bound = False
        self.factory_service = service
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

    def __init__(self, settings: EscalationSettings, reactor: Any, endpoint: Any = None,
                 inbound: SmppInbound | None = None) -> None:
        """`inbound`: where receipts and replies go (None: logged only)."""
        if not settings.smpp_host:
            raise ValueError("SmppChannel needs escalation.smpp_host")
        self.settings = settings
        self.reactor = reactor
        self._protocol: SmppClientProtocol | None = None
        self._waiters: list[defer.Deferred] = []
        self._references = itertools.count(1)
        self._inbound = inbound
        self._fixed_endpoint = endpoint
        self._submitting: set[defer.Deferred] = set()  # submits under way, on whichever bind
        self._rebinding: defer.Deferred | None = None
        self._service = self._client()

    def _client(self) -> ClientService:
        def bind() -> SmppClientProtocol:
            return SmppClientProtocol(self, service)

        service = ClientService(self._fixed_endpoint or self._endpoint(), protocol.Factory.forProtocol(bind),
                                retryPolicy=backoffPolicy(initialDelay=self.settings.smpp_reconnect_seconds,
                                                          maxDelay=60.0),
                                clock=self.reactor)
        return service

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
        """Unbind (waiting for the answer, at most the timeout), then close and stop reconnecting."""
        p = self._protocol
        d: defer.Deferred = defer.succeed(None)
        if p is not None and p.bound:
            d = p.request(UNBIND)
            d.addErrback(lambda _: None)
        return d.addCallback(lambda _: self._service.stopService())

    @property
    def running(self) -> bool:
        return bool(self._service.running)

    def follow(self, settings: EscalationSettings) -> "defer.Deferred[None]":
        """New settings (a settings reload). Those of the bind (host, port, credentials, TLS, the
        keepalive, the reconnection's delay): the submits under way finish on the old bind, which
        then unbinds; a new bind is made with the new settings; the messages waiting for a bind
        (and those sent meanwhile) go on it, once each. The others apply to the next message."""
        if not settings.smpp_host:
            raise ValueError("SmppChannel needs escalation.smpp_host")
        old, self.settings = self.settings, settings
        if _bind_of(old) == _bind_of(settings):
            return defer.succeed(None)
        logger.info("SMSC settings changed: binding again to %s:%s", settings.smpp_host, settings.smpp_port)
        previous = self._rebinding or defer.succeed(None)
        self._rebinding = d = previous.addCallback(lambda _: self._rebind())
        d.addErrback(lambda f: logger.error("SMSC bind not renewed: %s", f.getErrorMessage()))
        return d

    @defer.inlineCallbacks
    def _rebind(self):
        old, self._service = self._service, self._client()
        was_running = old.running
        p, self._protocol = self._protocol, None  # new sends wait for the new bind
        if self._submitting:
            yield defer.DeferredList(list(self._submitting))
        if p is not None and p.bound:
            try:
                yield p.request(UNBIND)
            except Exception:
                pass
        if old.running:
            yield old.stopService()
        if was_running:
            self._service.startService()
        self._rebinding = None

    # --- the bind --------------------------------------------------------------------------------

    def _bound(self, p: SmppClientProtocol) -> None:
        if p.factory_service is not self._service:  # a bind of the settings before a reload
            p.transport.loseConnection()
            return
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
        d.addCallback(self._submit, message)
        d.addErrback(self._failed)
        return d

    def _submit(self, p: SmppClientProtocol, message: Message) -> "defer.Deferred[str | None]":
        s = self.settings
        d = p.submit(s.smpp_source_addr or "callrouter", message.to, message.text, s.smpp_long_messages,
                     next(self._references))
        done: defer.Deferred = defer.Deferred()
        self._submitting.add(done)

        def finished(result):
            self._submitting.discard(done)
            done.callback(None)
            return result

        return d.addBoth(finished)

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
            if self._inbound is not None:
                self._inbound.receipt(message_id, state)
            return
        sender = e164(sm.source_ton, sm.source)
        logger.info("SMS reply from %s", mask_number(sender))
        if self._inbound is not None:
            self._inbound.reply(sender, sm.text)


def _bind_of(s: EscalationSettings) -> tuple:
    return (s.smpp_host, s.smpp_port, s.smpp_system_id, s.smpp_password, s.smpp_system_type, s.smpp_tls,
            s.smpp_cafile, s.smpp_enquire_link_seconds, s.smpp_reconnect_seconds)


class SmppInbound:
    """Receipts and replies take the webhooks' paths: `store.mark_delivered` for a DELIVRD receipt,
    `acknowledger.by_sms` for a reply (read there: yes acknowledges, a refusal declines, anything
    else is answered with how to reply); both blocking, run through `run_blocking`."""

    def __init__(self, store: AckStore, acknowledger: Acknowledger, clock: Clock, run_blocking: RunBlocking) -> None:
        self._store = store
        self._acknowledger = acknowledger
        self._clock = clock
        self._run = run_blocking

    def receipt(self, message_id: str, state: str) -> "defer.Deferred[Any] | None":
        if state != "DELIVRD":
            return None
        d = self._run(self._store.mark_delivered, message_id)
        d.addErrback(lambda f: logger.error("delivery receipt not stored: %s", f.getErrorMessage()))
        return d

    def reply(self, sender: str, text: str) -> "defer.Deferred[Any]":
        d = self._run(self._acknowledger.by_sms, sender, text, utc_from_clock(self._clock), "smpp")
        d.addErrback(lambda f: logger.error("SMS reply not processed: %s", f.getErrorMessage()))
        return d


__all__ = ["SmppChannel", "SmppClientProtocol", "SmppInbound"]
