"""The media vault: the directory of encrypted recordings and voicemail messages, one file each,
named by a random id the database row keeps (never a path, never a number), readable by the
service's user only; and their retention, hooked into the daily purge.

- `seal(plain)`: the plain WAV encrypted into a new vault file, then the plain file deleted; the
  file's name is the context its chunks are bound to, so a file renamed onto another row does not
  open (callrouter.recording.cipher).
- `read(name, sha256)`: the audio in clear, checked against its stored SHA-256.
- `remove(names)`: files whose rows are gone. Names only reach the vault's own directory; a
  legacy message's plain path only the voicemail directory, so a row altered in the database
  cannot make the service delete another file.
- `sweep(known)`: vault files no row names any more (a crash between a file and its row), and
  plain sides left in the spool by a worker or a service that died mid-call.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from callrouter.recording.cipher import MediaKey, Sealed
from callrouter.store import recordings as recording_rows
from callrouter.store import voicemails as voicemail_rows

logger = logging.getLogger(__name__)

SUFFIX = ".enc"
ORPHAN_AGE_S = 3600.0


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def valid_name(name: str) -> bool:
    stem = name.removesuffix(SUFFIX)
    return name.endswith(SUFFIX) and len(stem) == 32 and all(c in "0123456789abcdef" for c in stem)


class MediaVault:
    """`key` None: a vault that only removes files (the CLI's purge needs no key)."""

    def __init__(self, root: Path, key: MediaKey | None, legacy_root: Path | None = None) -> None:
        self.root = private_dir(root)
        self.key = key
        self._legacy_root = legacy_root.resolve() if legacy_root is not None else None

    def seal(self, plain: Path, keep_plain: bool = False) -> tuple[str, Sealed]:
        """Encrypt `plain` into a new vault file; the plain file deleted unless `keep_plain`."""
        name = uuid.uuid4().hex + SUFFIX
        sealed = self.key.seal_file(plain, self.root / name, name)
        if not keep_plain:
            shred(plain)
        return name, sealed

    def read(self, name: str, sha256: str | None) -> bytes:
        if not valid_name(name):
            raise FileNotFoundError("not a vault file name")
        return self.key.open_bytes(self.root / name, name, sha256)

    def exists(self, name: str) -> bool:
        return valid_name(name) and (self.root / name).is_file()

    def remove(self, names: Iterable[str]) -> int:
        removed = 0
        for name in names:
            path = self._where(name)
            if path is None:
                logger.error("a purged row named a file outside the vault: not removed")
                continue
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    def _where(self, name: str) -> Path | None:
        if valid_name(name):
            return self.root / name
        if self._legacy_root is not None and "/" in name:
            path = Path(name).resolve()
            if path.is_relative_to(self._legacy_root) and path.suffix == ".wav":
                return path
        return None

    def sweep(self, known: set[str], spool: Path | None = None, now: float | None = None,
              spool_age_s: float = ORPHAN_AGE_S) -> int:
        """Remove vault files no row names older than an hour, and spool files not written to for
        `spool_age_s` (longer than a recording may last: one being written is never touched)."""
        now = time.time() if now is None else now
        removed = 0
        for directory, keep, age in ((self.root, known, ORPHAN_AGE_S), (spool, set(), spool_age_s)):
            if directory is None or not directory.is_dir():
                continue
            for path in directory.iterdir():
                if path.name in keep or not path.is_file():
                    continue
                try:
                    if now - path.stat().st_mtime >= age:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
        if removed:
            logger.warning("removed %d audio file(s) no record names (left by an interrupted recording)", removed)
        return removed


def shred(path: Path) -> None:
    """Delete a plain audio file (overwritten first: it held a patient's voice in clear)."""
    try:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
        path.unlink()
    except FileNotFoundError:
        pass


@dataclass(frozen=True)
class MediaRetention:
    """The daily purge's step for audio (callrouter.store.retention.MediaPurge): recordings, their
    notes and voicemail messages past their limits, deleted in the purge's transaction; their files
    removed once it committed."""

    vault: MediaVault
    keep_days: int | None
    notes_days: int | None
    voicemail_days: int | None
    purge_recordings: Callable[..., tuple[dict, list[str]]]
    purge_voicemails: Callable[..., tuple[dict, list[str]]]

    def purge(self, session: Any, now: Any) -> tuple[dict[str, Any], Callable[[], None]]:
        rec_counts, rec_files = self.purge_recordings(session, now, self.keep_days, self.notes_days)
        vm_counts, vm_files = self.purge_voicemails(session, now, self.voicemail_days)
        files = rec_files + vm_files
        counts = {"call_recordings": rec_counts["call_recordings"], "recording_notes": rec_counts["recording_notes"],
                  "voicemails": vm_counts["voicemails"], "audio_files": len(files),
                  "media_cutoffs": {**rec_counts["cutoffs"], "voicemails": vm_counts["cutoff"]}}
        return counts, lambda: self.vault.remove(files)


def media_retention(vault: MediaVault, keep_days: int | None, notes_days: int | None,
                    voicemail_days: int | None) -> MediaRetention:
    """The purge's step for `vault`, with the store's purges of recordings and voicemail messages."""
    return MediaRetention(vault, keep_days, notes_days, voicemail_days, recording_rows.purge, voicemail_rows.purge)
