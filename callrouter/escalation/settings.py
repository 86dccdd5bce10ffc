"""Settings of the escalation engine (the `escalation:` section of the daemon settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
    # `call` steps as phone calls through the media workers and the controller's outbound trunk
    # (callrouter.controller.alerts). Off: a `call` step goes out as an SMS to the same phone.
    voice_calls: bool = False
    call_ring_timeout_seconds: float = 30.0
    call_digit_timeout_seconds: float = 6.0  # silence allowed after "tapez 1..., tapez 2..."
    call_repeats: int = 3                    # times the message is said before hanging up

    def problems(self) -> list[str]:
        out = []
        if self.enabled and not self.ack_secret:
            out.append("escalation.ack_secret: required when escalation is enabled")
        if self.sms_format not in ("json", "form"):
            out.append(f"escalation.sms_format: expected json or form, got {self.sms_format!r}")
        if self.sms_method not in ("POST", "PUT", "GET"):
            out.append(f"escalation.sms_method: expected POST, PUT or GET, got {self.sms_method!r}")
        if self.enabled and not (self.outbox_file or self.sms_url or self.smtp_host):
            out.append("escalation: enabled but no channel: set sms_url, smtp_host or outbox_file")
        if self.voice_calls and not 1 <= self.call_repeats <= 10:
            out.append(f"escalation.call_repeats: expected 1 to 10, got {self.call_repeats}")
        if self.voice_calls and not 5 <= self.call_ring_timeout_seconds <= 300:
            out.append("escalation.call_ring_timeout_seconds: expected 5 to 300 seconds")
        if self.voice_calls and not 1 <= self.call_digit_timeout_seconds <= 60:
            out.append("escalation.call_digit_timeout_seconds: expected 1 to 60 seconds")
        return out
