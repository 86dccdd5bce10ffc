"""Call recording and voicemail in the service tree: built once by callrouter.app, from the settings,
the database and the parts of the call side they hook into.

At build: the media key file read, or created (mode 0600) when there is none *and* no encrypted
file is on record (a missing key while there are would open none of them: refused with what to do).
At start: the messages stored in clear by earlier versions sealed; the on-demand requests read.
Then every minute the requests are read again (made on another node), every `notify_interval_s` the
practices' voicemail e-mails go out, every hour the spool and the vault are swept of files no
record names (a recording cut by a crash).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from twisted.application.internet import TimerService
from twisted.application.service import MultiService, Service

from callrouter.controller.legs import send_command
from callrouter.escalation.settings import EscalationSettings
from callrouter.ports import utc_from_clock
from callrouter.recording.calls import CallRecordings
from callrouter.recording.cipher import MediaKey
from callrouter.recording.ports import DemandBook
from callrouter.recording.settings import RecordingSettings
from callrouter.recording.vault import MediaRetention, MediaVault, media_retention, private_dir
from callrouter.recording.voicemail import Messages, VoicemailMail
from callrouter.store.db import Database
from callrouter.store.recordings import RecordingRepository
from callrouter.store.voicemails import VoicemailRepository
from callrouter.web.recordings import RecordingsApi

logger = logging.getLogger(__name__)

DEMANDS_REFRESH_S = 60.0
SWEEP_S = 3600.0


@dataclass(frozen=True)
class RecordingParts:
    hooks: CallRecordings          # the call side's CallRecordingHooks
    service: MultiService          # start-up sealing, timers
    retention: MediaRetention      # the daily purge's step
    recordings: RecordingRepository
    voicemails: VoicemailRepository
    vault: MediaVault
    demands: DemandBook
    mail: VoicemailMail            # the practices' e-mails (they follow a settings reload)

    def api(self, calls: Any, from_thread: Callable[..., Any]) -> RecordingsApi:
        return RecordingsApi(self.recordings, self.voicemails, self.vault, calls,
                             lambda call_id, actor: from_thread(self.hooks.refuse, call_id, actor),
                             lambda: from_thread(self.demands.refresh))


def build_recording(settings: RecordingSettings, var_dir: Path, voicemail_dir: Path, db: Database, reactor: Any,
                    media: Any, legs: Any, prompt_path: Callable[[str, str | None], str], write: Callable[..., None],
                    on_thread: Callable[..., Any], dialplans: Callable[[], Mapping[str, Any]],
                    escalation: EscalationSettings, console_url: str,
                    announce_task: Callable[[str], None] = lambda task_id: None) -> RecordingParts:
    """`write(fn, *args)`: the call recorder's ordered store writes; `announce_task(task_id)`: from
    that thread, a voicemail message's task announced (the consoles list the message with it)."""
    recordings, voicemails = RecordingRepository(db), VoicemailRepository(db)
    key_path = settings.key_path(var_dir)
    existing = bool(recordings.files()) or voicemails.count() > 0
    created = not key_path.exists()
    key = MediaKey.from_file(key_path, create=not existing)
    if created:
        logger.warning("created the media key file %s (mode 0600): keep a copy of it apart from the "
                       "database's backups; without it no recording or message opens", key_path)
    vault = MediaVault(settings.vault_path(var_dir), key, legacy_root=voicemail_dir)
    spool = private_dir(settings.spool_path(var_dir))
    demands = DemandBook(recordings.active_demands, on_thread, reactor)
    messages = Messages(write, voicemails, vault, settings.voicemail_max_bytes, lambda: utc_from_clock(reactor),
                        announce_task)
    hooks = CallRecordings(reactor, lambda command: send_command(media, None, command), legs, prompt_path, write,
                           on_thread, recordings, vault, spool, settings, demands, messages)
    mail = VoicemailMail(voicemails, dialplans, escalation, var_dir / "voicemail-mail", console_url)

    service = MultiService()
    service.setName("recording")
    _Startup(messages, voicemails, demands, on_thread).setServiceParent(service)
    for interval, job in ((DEMANDS_REFRESH_S, demands.refresh),
                          (settings.notify_interval_s, lambda: _logged(on_thread(mail.send_due, utc_from_clock(reactor)),
                                                                        "voicemail e-mails")),
                          (SWEEP_S, lambda: _logged(on_thread(_sweep, vault, recordings, voicemails, spool,
                                                              settings.max_call_s + 600), "sweep"))):
        timer = TimerService(interval, job)
        timer.clock = reactor
        timer.setServiceParent(service)
    retention = media_retention(vault, settings.keep_days, settings.notes_days, settings.voicemail_days)
    return RecordingParts(hooks, service, retention, recordings, voicemails, vault, demands, mail)


class _Startup(Service):
    """The messages stored in clear sealed, e-mails a stop cut short given up, requests read."""

    name = "recording-startup"

    def __init__(self, messages: Messages, voicemails: VoicemailRepository, demands: DemandBook,
                 on_thread: Callable[..., Any]) -> None:
        self._messages, self._voicemails, self._demands, self._on_thread = messages, voicemails, demands, on_thread

    def startService(self) -> None:
        super().startService()
        _logged(self._on_thread(self._voicemails.release_sending), "voicemail e-mails cut short")
        _logged(self._on_thread(self._messages.seal_legacy), "sealing the messages stored in clear")
        self._demands.refresh()


def _sweep(vault: MediaVault, recordings: RecordingRepository, voicemails: VoicemailRepository, spool: Path,
           spool_age_s: float) -> int:
    return vault.sweep(recordings.files() | voicemails.files(), spool, spool_age_s=spool_age_s)


def _logged(d: Any, what: str) -> Any:
    d.addErrback(lambda f: logger.error("%s failed: %s", what, f.getErrorMessage()))
    return d
