"""Settings of call recording and voicemail (the `recording:` section of the settings file).

Whether a practice's calls are recorded is its dialplan's (`recording:` there); these are the
service's: where the encrypted audio and its key live, how long each kind is kept, the limits.
`key_file`, `vault_dir` and `spool_dir` default to files under `var_dir` (callrouter.config).
Keep the key file out of the database's backups, and a copy of it apart: without it no recording
or message opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RecordingSettings:
    key_file: Path | None = None          # default: var_dir/media.key (created, mode 0600, at first start)
    vault_dir: Path | None = None         # default: var_dir/vault: the encrypted recordings and messages
    spool_dir: Path | None = None         # default: var_dir/recording-spool: a call's sides while recorded
    keep_days: int | None = 183           # recordings (CNIL: at most 6 months)
    notes_days: int | None = 365          # supervisors' evaluation notes (CNIL: at most 1 year)
    voicemail_days: int | None = 90       # voicemail messages
    max_call_s: float = 3600.0            # a recording stops after this, the call going on
    voicemail_max_bytes: int = 4_000_000  # a longer message is cut to this (its beginning kept)
    notify_interval_s: float = 30.0       # how often the practices' voicemail e-mails go out

    def problems(self) -> list[str]:
        out = []
        if not 60 <= self.max_call_s <= 4 * 3600:
            out.append("recording.max_call_s: between 60 and 14400 seconds")
        if self.voicemail_max_bytes < 64 * 1024:
            out.append("recording.voicemail_max_bytes: at least 65536 (4 seconds of a message)")
        if self.keep_days is not None and self.keep_days > 183:
            out.append("recording.keep_days: at most 183 days (six months: CNIL guidance on call recordings)")
        if self.notes_days is not None and self.notes_days > 366:
            out.append("recording.notes_days: at most 366 days (a year: CNIL guidance on their analyses)")
        return out

    def key_path(self, var_dir: Path) -> Path:
        return self.key_file or var_dir / "media.key"

    def vault_path(self, var_dir: Path) -> Path:
        return self.vault_dir or var_dir / "vault"

    def spool_path(self, var_dir: Path) -> Path:
        return self.spool_dir or var_dir / "recording-spool"
