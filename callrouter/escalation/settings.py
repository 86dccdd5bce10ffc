"""Settings of the escalation engine (the `escalation:` section of the daemon settings)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


@dataclass(frozen=True)
class DutyContact:
    """Who in the secretariat hears of a chain that ran out with nobody acknowledging
    (`escalation.duty_contact`): an SMS and/or an e-mail, sent through the outbox."""

    sms: str | None = None      # +33...
    email: str | None = None


@dataclass(frozen=True)
class EscalationSettings:
    """How escalation messages leave, and how acknowledgements come back.

    `outbox_file` (development): every SMS and e-mail is appended to that JSON-lines file instead
    of being sent. `sms_body_template` holds `{to}` and `{text}`; with `sms_format: json` the values
    are JSON-escaped, with `form` the template is `a={to}&b={text}` and values are URL-encoded.
    """

    enabled: bool = False
    ack_secret: str | None = None           # HMAC key of acknowledgement links; required if enabled
    public_url: str = "http://127.0.0.1:8080"  # base of the links practitioners open
    inbound_sms_secret: str | None = None   # the gateway's webhook sends it as X-Webhook-Secret
    outbox_file: Path | None = None
    sms_url: str | None = None
    sms_method: str = "POST"
    sms_format: str = "json"
    sms_body_template: str = '{"to": "{to}", "text": "{text}"}'
    sms_auth_header: str | None = None      # whole Authorization header value ("Bearer ...")
    sms_username: str | None = None         # HTTP basic auth, if no auth header
    sms_password: str | None = None
    sms_id_field: str = "id"                # JSON field of the gateway's answer naming the message
    http_timeout_seconds: float = 10.0
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_cafile: Path | None = None         # CA to verify the SMTP server with (default: system)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "callrouter@localhost"
    # SMS through an SMSC over SMPP 3.4 instead of the HTTP gateway (callrouter.escalation.smpp).
    sms_gateway: str = "http"               # http | smpp
    smpp_host: str | None = None
    smpp_port: int = 2775
    smpp_system_id: str | None = None
    smpp_password: str | None = None
    smpp_system_type: str | None = None
    smpp_source_addr: str | None = None     # +33... or an alphanumeric sender id (11 characters max)
    smpp_tls: bool = False
    smpp_cafile: Path | None = None         # CA to verify the SMSC with (default: system)
    smpp_enquire_link_seconds: float = 30.0
    smpp_reconnect_seconds: float = 1.0     # first delay before reconnecting; doubles up to 60 s
    smpp_long_messages: str = "udh"         # udh (concatenated parts) | payload (message_payload TLV)
    # `call` steps as phone calls through the media workers and the controller's outbound trunk
    # (callrouter.controller.alerts). Off: a `call` step goes out as an SMS to the same phone.
    voice_calls: bool = False
    call_ring_timeout_seconds: float = 30.0
    call_digit_timeout_seconds: float = 6.0  # silence allowed after "tapez 1..., tapez 2..."
    call_repeats: int = 3                    # times the message is said before hanging up
    # Alerted when a chain is exhausted (besides the MQTT event and the metric).
    duty_contact: DutyContact = field(default_factory=DutyContact)

    def problems(self) -> list[str]:
        out = []
        if self.enabled and not self.ack_secret:
            out.append("escalation.ack_secret: required when escalation is enabled")
        if self.sms_format not in ("json", "form"):
            out.append(f"escalation.sms_format: expected json or form, got {self.sms_format!r}")
        if self.sms_method not in ("POST", "PUT", "GET"):
            out.append(f"escalation.sms_method: expected POST, PUT or GET, got {self.sms_method!r}")
        if self.enabled and not (self.outbox_file or self.sms_url or self.smtp_host or self.smpp_host):
            out.append("escalation: enabled but no channel: set sms_url, smpp_host, smtp_host or outbox_file")
        if self.sms_gateway not in ("http", "smpp"):
            out.append(f"escalation.sms_gateway: expected http or smpp, got {self.sms_gateway!r}")
        if self.sms_gateway == "smpp" and not (self.smpp_host and self.smpp_system_id):
            out.append("escalation.sms_gateway is smpp: set smpp_host and smpp_system_id")
        if self.smpp_long_messages not in ("udh", "payload"):
            out.append(f"escalation.smpp_long_messages: expected udh or payload, got {self.smpp_long_messages!r}")
        if not 1 <= self.smpp_enquire_link_seconds <= 600:
            out.append("escalation.smpp_enquire_link_seconds: expected 1 to 600 seconds")
        if self.smpp_source_addr and not self.smpp_source_addr.startswith("+") and len(self.smpp_source_addr) > 11:
            out.append("escalation.smpp_source_addr: an alphanumeric sender id has at most 11 characters")
        if self.voice_calls and not 1 <= self.call_repeats <= 10:
            out.append(f"escalation.call_repeats: expected 1 to 10, got {self.call_repeats}")
        if self.voice_calls and not 5 <= self.call_ring_timeout_seconds <= 300:
            out.append("escalation.call_ring_timeout_seconds: expected 5 to 300 seconds")
        if self.voice_calls and not 1 <= self.call_digit_timeout_seconds <= 60:
            out.append("escalation.call_digit_timeout_seconds: expected 1 to 60 seconds")
        duty = self.duty_contact
        if duty.sms is not None and not _E164.match(duty.sms):
            out.append(f"escalation.duty_contact.sms: expected a number such as +33612345678, got {duty.sms!r}")
        if duty.email is not None and "@" not in duty.email:
            out.append(f"escalation.duty_contact.email: expected an e-mail address, got {duty.email!r}")
        return out
