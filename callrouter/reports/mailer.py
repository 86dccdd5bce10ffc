"""The weekly report's e-mail: French text, the PDF attached, through the SMTP relay the
escalation uses (`escalation.smtp_*`: host, port, STARTTLS and its CA, login, sender).

The escalation's SmtpChannel carries text only, so the same SMTP session (EHLO, STARTTLS against
the configured CA, login) is opened here for a message with an attachment. What a failure means
for the outbox is decided by where it happened:

- before the message was handed over (connection, TLS, login), or refused by the relay with an
  SMTP error reply: nothing left: `MailNotSent`, and the outbox may try again later;
- while the message was being handed over or its reply awaited (the connection dropped, a
  timeout): the relay may have taken it: `MailMaybeSent`, and the outbox never sends it again by
  itself.

With `escalation.outbox_file` (development) nothing is sent: the message is written as an .eml file
in `var/reports/outbox/`.
"""

from __future__ import annotations

import email.message
import email.utils
import smtplib
import ssl
from dataclasses import dataclass
from pathlib import Path

from callrouter.escalation.settings import EscalationSettings


class MailNotSent(Exception):
    """The relay did not take the message (it may be tried again)."""


class MailMaybeSent(Exception):
    """The send was cut short where the relay may have taken the message."""


@dataclass(frozen=True)
class ReportMail:
    to: tuple[str, ...]
    subject: str
    text: str
    attachment_name: str
    attachment: bytes  # the PDF
    key: str  # unique per practice and week: the Message-ID's left part


def compose(mail: ReportMail, sender: str) -> email.message.EmailMessage:
    msg = email.message.EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(mail.to)
    msg["Subject"] = mail.subject
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = f"<{mail.key}@callrouter>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(mail.text)
    msg.add_attachment(mail.attachment, maintype="application", subtype="pdf", filename=mail.attachment_name)
    return msg


class SmtpReportMailer:
    """Blocking: run from a thread pool."""

    def __init__(self, settings: EscalationSettings, outbox_dir: Path | None = None) -> None:
        self._s = settings
        self._outbox_dir = Path(outbox_dir) if outbox_dir is not None else None

    @property
    def configured(self) -> bool:
        return bool(self._s.smtp_host) or (self._s.outbox_file is not None and self._outbox_dir is not None)

    def follow(self, settings: EscalationSettings) -> None:
        """New relay settings (a settings reload): for the next report; one being sent finishes."""
        self._s = settings

    def send(self, mail: ReportMail) -> str:
        """Send; the Message-ID, or MailNotSent / MailMaybeSent."""
        s = self._s  # the whole mail goes with the settings it started with
        msg = compose(mail, s.smtp_from)
        if not s.smtp_host and s.outbox_file is not None and self._outbox_dir is not None:
            return self._to_file(msg, mail.key)
        if not s.smtp_host:
            raise MailNotSent("no SMTP relay is configured (escalation.smtp_host)")
        smtp = self._open(s)
        try:
            smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:  # the relay answered with an error: not taken
            raise MailNotSent(f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise MailNotSent(f"SMTP: every recipient refused ({len(exc.recipients)})") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise MailMaybeSent(f"SMTP: cut short while sending: {exc or type(exc).__name__}") from None
        finally:
            _quit(smtp)
        return msg["Message-ID"]

    def _open(self, s: EscalationSettings) -> smtplib.SMTP:
        try:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.http_timeout_seconds)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailNotSent(f"SMTP: {exc or type(exc).__name__}") from None
        try:
            smtp.ehlo()
            if s.smtp_starttls:
                context = ssl.create_default_context(cafile=str(s.smtp_cafile) if s.smtp_cafile else None)
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password or "")
        except (OSError, smtplib.SMTPException) as exc:
            _quit(smtp)
            raise MailNotSent(f"SMTP: {exc or type(exc).__name__}") from None
        return smtp

    def _to_file(self, msg: email.message.EmailMessage, key: str) -> str:
        try:
            self._outbox_dir.mkdir(parents=True, exist_ok=True)
            (self._outbox_dir / f"{key}.eml").write_bytes(msg.as_bytes())
        except OSError as exc:
            raise MailNotSent(f"outbox: {exc.strerror}") from None
        return msg["Message-ID"]


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def _text(raw: bytes | str) -> str:
    return (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))[:200]
