"""Audio files encrypted at rest: AES-256-GCM in chunks, under a key file outside the database.

The key file is read and created as the TOTP secrets' is (callrouter.auth.sealing: 32 random bytes
in base64, mode 0600, a file others may read refused) but is a file of its own
(`recording.key_file`, by default `var/media.key`): neither key opens what the other sealed.

An encrypted file is a header then chunks::

    header = MAGIC (8 bytes) || key id (16 ASCII hex) || nonce prefix (8 random bytes) || chunk size (4, big endian)
    chunk i = AES-GCM(key, nonce = prefix || i (4, big endian),
                      data = plain[i], associated data = header || context || final flag (1 byte))

Each chunk holds `chunk size` bytes of audio (the last one fewer, possibly none) and carries its
16-byte tag; the last is flagged final, so a file cut short, a chunk moved, a file copied onto
another recording's row (the *context* is the row's file name) or altered anywhere does not open:
`Unreadable`. A file sealed under another key says which key it needs (`WrongKey`). Chunks let a
long recording be written and read without holding it in memory twice.
"""

from __future__ import annotations

import hashlib
import os
import secrets as _random
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from callrouter.auth.sealing import KeyFileError, create_key_file, key_id, read_key_file

MAGIC = b"CRAUDIO1"
CHUNK = 64 * 1024
TAG = 16
_HEADER = struct.Struct(">8s16s8sI")


class CipherError(Exception):
    """A file that cannot be opened; the message says why (never a path or a number)."""


class Unreadable(CipherError):
    pass


class WrongKey(CipherError):
    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Sealed:
    """What sealing a file gave: the bytes written, and the SHA-256 of the audio (in clear)."""

    size: int
    sha256: str


class MediaKey:
    """The key that encrypts recordings and voicemail messages."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self.key_id = key_id(key)

    @classmethod
    def from_file(cls, path: Path, create: bool) -> "MediaKey":
        """The key in `path`; created (mode 0600) when missing and `create`, else KeyFileError."""
        if not path.exists():
            if not create:
                raise KeyFileError(f"the media key file {path} is missing but encrypted audio files exist: "
                                   "restore that file from your copy of it (a new key would open none of them)")
            return cls(create_key_file(path))
        return cls(read_key_file(path))

    # --- sealing ---------------------------------------------------------------------------------

    def seal(self, source: BinaryIO, target: BinaryIO, context: str) -> Sealed:
        """Encrypt `source` (read to its end) into `target`, bound to `context`."""
        prefix = _random.token_bytes(8)
        header = _HEADER.pack(MAGIC, self.key_id.encode("ascii"), prefix, CHUNK)
        target.write(header)
        digest, size = hashlib.sha256(), len(header)
        chunk, index = _read_full(source, CHUNK), 0
        while True:
            following = _read_full(source, CHUNK) if len(chunk) == CHUNK else b""
            final = not following
            digest.update(chunk)
            sealed = self._aead.encrypt(prefix + struct.pack(">I", index), chunk, _aad(header, context, final))
            target.write(sealed)
            size += len(sealed)
            if final:
                return Sealed(size, digest.hexdigest())
            chunk, index = following, index + 1

    def seal_file(self, plain: Path, target: Path, context: str) -> Sealed:
        """Encrypt the file `plain` into a new file `target` (written aside, then renamed: a target
        is never half written), readable by its owner only."""
        partial = target.with_name(target.name + ".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with open(plain, "rb") as source, os.fdopen(fd, "wb") as out:
                sealed = self.seal(source, out, context)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return sealed

    # --- opening ---------------------------------------------------------------------------------

    def chunks(self, source: BinaryIO, context: str) -> Iterator[bytes]:
        """The audio of an encrypted file, chunk by chunk; Unreadable or WrongKey on the way."""
        header = source.read(_HEADER.size)
        if len(header) != _HEADER.size:
            raise Unreadable("not an encrypted audio file (too short)")
        magic, kid, prefix, size = _HEADER.unpack(header)
        if magic != MAGIC or not 0 < size <= 16 * CHUNK:
            raise Unreadable("not an encrypted audio file of this version")
        found = kid.decode("ascii", "replace")
        if found != self.key_id:
            raise WrongKey(f"sealed with key {found}, but the media key file holds key {self.key_id}", found)
        index, chunk = 0, _read_full(source, size + TAG)
        while True:
            following = _read_full(source, size + TAG) if len(chunk) == size + TAG else b""
            final = not following
            try:
                yield self._aead.decrypt(prefix + struct.pack(">I", index), chunk, _aad(header, context, final))
            except InvalidTag:
                raise Unreadable("the file does not open: altered, cut short, or copied from another record") from None
            if final:
                return
            chunk, index = following, index + 1

    def open_bytes(self, path: Path, context: str, sha256: str | None = None) -> bytes:
        """The whole audio of an encrypted file, its SHA-256 checked when given."""
        with open(path, "rb") as source:
            data = b"".join(self.chunks(source, context))
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise Unreadable("the audio does not match its stored SHA-256")
        return data


def _aad(header: bytes, context: str, final: bool) -> bytes:
    return header + context.encode("utf-8") + (b"\x01" if final else b"\x00")


def _read_full(source: BinaryIO, n: int) -> bytes:
    parts, left = [], n
    while left:
        data = source.read(left)
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return b"".join(parts)
