"""Voicemail messages sealed and told: each message encrypted into the media vault as soon as it is
left (cut to its size limit first), the messages written in clear by earlier versions sealed at
start, and the practice's e-mail for each new message when its dialplan asks for one.

The e-mail says that a message was left, when and how long: never the caller's number nor the
audio (e-mail is no channel for health data); the secretaries and the practice hear it in the
console, where every listening is audited. E-mails go through the SMTP relay the escalation uses
(`escalation.smtp_*`), or, with `escalation.outbox_file` (development), as .eml files in
`var/voicemail-mail/`. A message's e-mail is claimed before it is sent and never sent twice; one a
stop cut short is not sent again.
"""

from __future__ import annotations

import datetime as dt
import email.message
import email.utils
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

from callrouter.escalation.settings import EscalationSettings
from callrouter.ports import Actor
from callrouter.recording.audio import AudioError, cut_to_size
from callrouter.recording.ports import MessageStore
from callrouter.recording.vault import MediaVault

logger = logging.getLogger(__name__)

SYSTEM = Actor("system", "recording")


@dataclass(eq=False)
class _Seal:
    """One message to seal then store; run again after a database hiccup, it does not seal twice."""

    plain: Path
    call_id: str
    practice: str
    started_at: dt.datetime
    duration: float
    task_id: str | None
    notify: bool
    sealed: Any = field(default=None, repr=False)


class Messages:
    def __init__(self, write: Callable[..., None], store: MessageStore, vault: MediaVault, max_bytes: int,
                 now: Callable[[], dt.datetime], announce: Callable[[str], None] = lambda task_id: None) -> None:
        """`write(fn)`: an ordered, retried store write (the call recorder's); `announce(task_id)`:
        the message is stored, its task's consoles told (they list the message with it)."""
        self._write, self._store, self._vault, self._max, self._now = write, store, vault, max_bytes, now
        self._announce = announce

    def left(self, call_id: str, practice: str, plain: Path, started_at: dt.datetime, duration: float,
             task_id: str | None, notify: bool) -> None:
        self._write(self._seal, _Seal(plain, call_id, practice, started_at, duration, task_id, notify))

    def _seal(self, job: _Seal) -> None:
        if job.sealed is None:
            if not job.plain.is_file():
                logger.error("call %s: its voicemail message has no file: nothing stored", job.call_id)
                return
            try:
                truncated = cut_to_size(job.plain, self._max)
            except AudioError:
                truncated = False
            name, sealed = self._vault.seal(job.plain)
            job.sealed = (name, sealed, truncated)
            if truncated:
                logger.warning("call %s: voicemail message longer than the size limit: cut", job.call_id)
        name, sealed, truncated = job.sealed
        self._store.add(job.call_id, job.practice, job.task_id, name, self._vault.key.key_id, sealed.sha256,
                        sealed.size, job.duration, truncated, job.started_at, self._now(), job.notify)
        if job.task_id is not None:
            try:
                self._announce(job.task_id)
            except Exception:  # stored: a lost announcement only delays a console's refresh
                logger.exception("call %s: voicemail message stored but not announced", job.call_id)

    def seal_legacy(self) -> int:
        """Blocking, at start: the messages stored in clear by earlier versions, sealed (audited)."""
        done = 0
        for message_id, path, call_id in self._store.legacy():
            plain = Path(path)
            if not plain.is_file():
                logger.warning("voicemail message %s: its plain file is gone: marked lost", message_id)
                self._store.sealed(message_id, None, None, None, None, SYSTEM, self._now())
                continue
            name, sealed = self._vault.seal(plain)
            self._store.sealed(message_id, name, self._vault.key.key_id, sealed.sha256, sealed.size, SYSTEM,
                               self._now())
            done += 1
        if done:
            logger.warning("sealed %d voicemail message(s) stored in clear by an earlier version", done)
        return done


class VoicemailMail:
    """Blocking: the practices' e-mails for their new messages (run off the reactor)."""

    def __init__(self, store: MessageStore, dialplans: Callable[[], Mapping[str, Any]],
                 settings: EscalationSettings, outbox_dir: Path, console_url: str) -> None:
        self._store, self._dialplans, self._s = store, dialplans, settings
        self._outbox, self._console = outbox_dir, console_url

    def follow(self, settings: EscalationSettings, console_url: str) -> None:
        """A settings reload (from the reactor): the relay and the console's address of the next mail."""
        self._s, self._console = settings, console_url

    def send_due(self, now: dt.datetime) -> int:
        sent = 0
        for view in self._store.claim_notifications():
            dialplan = self._dialplans().get(view.practice)
            to = dialplan.recording.voicemail_emails if dialplan is not None and dialplan.recording else ()
            ok = False
            s, console = self._s, self._console  # one mail goes with one version of the settings
            if to:
                try:
                    self._send(self._compose(view, dialplan, to, s, console), s)
                    ok = True
                    sent += 1
                except (OSError, smtplib.SMTPException) as exc:
                    logger.warning("voicemail message %s: e-mail to the practice not sent: %s", view.id,
                                   type(exc).__name__)
            self._store.notified(view.id, ok, now)
        return sent

    def _compose(self, view: Any, dialplan: Any, to: tuple[str, ...], s: EscalationSettings,
                 console: str) -> email.message.EmailMessage:
        local = view.created_at.astimezone(ZoneInfo(dialplan.calendar.timezone))
        seconds = int(round(view.duration_seconds or 0))
        msg = email.message.EmailMessage()
        msg["From"] = s.smtp_from
        msg["To"] = ", ".join(to)
        msg["Subject"] = f"Nouveau message vocal — {dialplan.name}"
        msg["Date"] = email.utils.formatdate(localtime=False)
        msg["Message-ID"] = f"<voicemail-{view.id}-{view.call_id[:12]}@callrouter>"
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(
            f"Bonjour,\n\nUn message vocal de {seconds // 60} min {seconds % 60:02d} s a été laissé le "
            f"{local:%d/%m/%Y} à {local:%H:%M} sur la messagerie de {dialplan.name}.\n\n"
            f"Il est à écouter dans la console du secrétariat, où la demande de rappel du patient "
            f"l'accompagne : {console}\n\n"
            "Par confidentialité, ce courriel ne contient ni le numéro de l'appelant ni le message.\n")
        return msg

    def _send(self, msg: email.message.EmailMessage, s: EscalationSettings) -> None:
        if not s.smtp_host:
            if s.outbox_file is None:
                raise OSError("no SMTP relay is configured (escalation.smtp_host)")
            self._outbox.mkdir(parents=True, exist_ok=True)
            (self._outbox / f"{msg['Message-ID'].strip('<>').split('@')[0]}.eml").write_bytes(msg.as_bytes())
            return
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.http_timeout_seconds) as smtp:
            smtp.ehlo()
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=str(s.smtp_cafile) if s.smtp_cafile else None))
                smtp.ehlo()
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password or "")
            smtp.send_message(msg)
