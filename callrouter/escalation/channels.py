"""Channels carry one message each: `send(message)` fires with the provider's message id, or fails
with ChannelError (both in callrouter.escalation.ports). Implemented here: a generic HTTP SMS
gateway, SMTP e-mail, a local file outbox; SMPP is callrouter.escalation.smpp.

The voice channel (callrouter.escalation.voice) fits the same Protocol: `send` places the call and
fires once its outcome is known; the acknowledgement is the practitioner pressing 1 (or 2, to be
connected to the patient), recorded in the store with via "call". A call that reaches voicemail, or
is hung up without a key, is NOT an acknowledgement: the chain goes on. It is built only when
`escalation.voice_calls` is on; otherwise a `call` step goes out as an SMS (engine.FALLBACKS).
"""

from __future__ import annotations

import base64
import email.message
import email.utils
import io
import json
import logging
import smtplib
import ssl
import urllib.parse
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.web.client import Agent, FileBodyProducer, PartialDownloadError, readBody
from twisted.web.http_headers import Headers

from callrouter.domain.call import mask_number
from callrouter.escalation.messages import Message
from callrouter.escalation.ports import Channel, ChannelError
from callrouter.escalation.settings import EscalationSettings
from callrouter.escalation.smpp import SmppChannel, SmppInbound
from callrouter.ports import RunBlocking, utc_from_clock

logger = logging.getLogger(__name__)


class HttpSmsChannel:
    """A generic HTTP SMS gateway: URL, method, Authorization header or basic auth, a body template
    with {to} and {text}, sent as JSON or as a form. A non-2xx answer is a ChannelError.

    The message key goes in an `Idempotency-Key` header: gateways that honour it drop a duplicate.
    """

    def __init__(self, settings: EscalationSettings, reactor: Any) -> None:
        if not settings.sms_url:
            raise ValueError("HttpSmsChannel needs escalation.sms_url")
        self._s = settings
        self._reactor = reactor
        self._agent = Agent(reactor)

    def follow(self, settings: EscalationSettings) -> None:
        """New gateway settings (a settings reload): the next message goes with them; one being
        sent finishes with those it started with."""
        if not settings.sms_url:
            raise ValueError("HttpSmsChannel needs escalation.sms_url")
        self._s = settings

    def body(self, message: Message, s: EscalationSettings | None = None) -> bytes:
        s = s or self._s
        template = s.sms_body_template
        if s.sms_format == "json":
            def esc(v: str) -> str:
                return json.dumps(v, ensure_ascii=False)[1:-1]
        else:
            def esc(v: str) -> str:
                return urllib.parse.quote(v, safe="")
        return template.replace("{to}", esc(message.to)).replace("{text}", esc(message.text)).encode()

    def headers(self, message: Message, s: EscalationSettings | None = None) -> Headers:
        s = s or self._s
        ctype = b"application/json" if s.sms_format == "json" else b"application/x-www-form-urlencoded"
        h = Headers({b"Content-Type": [ctype], b"Idempotency-Key": [message.key.encode()],
                     b"User-Agent": [b"callrouter"]})
        if s.sms_auth_header:
            h.addRawHeader(b"Authorization", s.sms_auth_header.encode())
        elif s.sms_username:
            pair = f"{s.sms_username}:{s.sms_password or ''}".encode()
            h.addRawHeader(b"Authorization", b"Basic " + base64.b64encode(pair))
        return h

    def send(self, message: Message) -> "defer.Deferred[str | None]":
        s = self._s  # the whole message goes with the settings it started with
        body = self.body(message, s)
        url = s.sms_url or ""
        producer = None
        if s.sms_method == "GET":
            url = f"{url}{'&' if '?' in url else '?'}{body.decode()}"
        else:
            producer = FileBodyProducer(io.BytesIO(body))
        d = self._agent.request(s.sms_method.encode(), url.encode(), self.headers(message, s), producer)
        d.addTimeout(s.http_timeout_seconds, self._reactor)
        d.addCallback(self._answer, s.sms_id_field)
        d.addErrback(self._failed, message)
        return d

    def _answer(self, response, id_field: str) -> "defer.Deferred[str | None]":
        d = readBody(response)
        # An HTTP/1.0 answer without Content-Length ends at the connection's close: not an error.
        d.addErrback(lambda f: f.trap(PartialDownloadError) and f.value.response)

        def check(data: bytes) -> str | None:
            if not 200 <= response.code < 300:
                raise ChannelError(f"SMS gateway answered HTTP {response.code}")
            try:
                value = json.loads(data).get(id_field)
            except (ValueError, AttributeError):
                return None
            return None if value is None else str(value)

        return d.addCallback(check)

    @staticmethod
    def _failed(failure, message: Message):
        if failure.check(ChannelError):
            return failure
        raise ChannelError(f"SMS gateway unreachable: {failure.getErrorMessage() or failure.type.__name__}")


class SmtpChannel:
    """E-mail through an SMTP relay with STARTTLS, smtplib run by `run_blocking` (a thread pool)."""

    def __init__(self, settings: EscalationSettings, run_blocking: RunBlocking) -> None:
        if not settings.smtp_host:
            raise ValueError("SmtpChannel needs escalation.smtp_host")
        self._s = settings
        self._run = run_blocking

    def follow(self, settings: EscalationSettings) -> None:
        """New relay settings (a settings reload): for the next mail; one being sent finishes."""
        if not settings.smtp_host:
            raise ValueError("SmtpChannel needs escalation.smtp_host")
        self._s = settings

    def send(self, message: Message) -> "defer.Deferred[str | None]":
        d = self._run(self._send_blocking, message, self._s)
        d.addErrback(self._failed)
        return d

    def _send_blocking(self, message: Message, s: EscalationSettings) -> str:
        msg = email.message.EmailMessage()
        msg["From"] = s.smtp_from
        msg["To"] = message.to
        msg["Subject"] = message.subject
        msg["Date"] = email.utils.formatdate(localtime=False)
        msg["Message-ID"] = email.utils.make_msgid(idstring=message.key, domain="callrouter")
        msg.set_content(message.text)
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.http_timeout_seconds) as smtp:
            smtp.ehlo()
            if s.smtp_starttls:
                context = ssl.create_default_context(cafile=str(s.smtp_cafile) if s.smtp_cafile else None)
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password or "")
            smtp.send_message(msg)
        return msg["Message-ID"]

    @staticmethod
    def _failed(failure):
        if failure.check(ChannelError):
            return failure
        raise ChannelError(f"SMTP: {failure.getErrorMessage() or failure.type.__name__}")


class OutboxFileChannel:
    """Development: appends each message as a JSON line to a file (under var/) instead of sending."""

    def __init__(self, path: Path, clock: Any) -> None:
        self._path = Path(path)
        self._clock = clock

    def send(self, message: Message) -> "defer.Deferred[str | None]":
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            at = utc_from_clock(self._clock).isoformat()
            line = json.dumps({"at": at, "channel": message.channel, "to": message.to,
                               "subject": message.subject, "text": message.text, "key": message.key},
                              ensure_ascii=False)
            with self._path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError as exc:
            return defer.fail(ChannelError(f"outbox file: {exc.strerror}"))
        logger.info("outbox: %s to %s written to %s", message.channel, mask_number(message.to), self._path)
        return defer.succeed(message.key)


def build_channels(settings: EscalationSettings, reactor: Any, run_blocking: RunBlocking,
                   voice: Channel | None = None, inbound: SmppInbound | None = None) -> dict[str, Channel]:
    """channel name -> Channel from the settings; the outbox file, when set, replaces SMS and
    e-mail. `voice` (the alert calls, when the service has a media plane) serves `call` steps if
    `voice_calls` is on. `inbound`: where an SMPP bind hands its receipts and replies."""
    calls: dict[str, Channel] = {"call": voice} if voice is not None and settings.voice_calls else {}
    if settings.outbox_file is not None:
        outbox = OutboxFileChannel(settings.outbox_file, reactor)
        return {"sms": outbox, "email": outbox, **calls}
    out: dict[str, Channel] = dict(calls)
    if settings.sms_gateway == "smpp":
        out["sms"] = SmppChannel(settings, reactor, inbound=inbound)
    elif settings.sms_url:
        out["sms"] = HttpSmsChannel(settings, reactor)
    if settings.smtp_host:
        out["email"] = SmtpChannel(settings, run_blocking)
    return out
