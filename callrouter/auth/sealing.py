"""Secrets kept in the database sealed with a key that is not there: AES-256-GCM, key files.

A key file holds 32 random bytes, base64-encoded on one line, and must be readable by its owner
only (mode 0600, as ssh asks of a private key): a file others may read is refused. It lives
outside the database (by default in the service's `var/` directory, beside the SQLite file but
never inside it), so a dump or a stolen copy of the database alone reveals no sealed secret.

A sealed value reads `aesgcm1$<key id>$<base64url(nonce || ciphertext || tag)>`. The key id is a
digest of the key (it reveals nothing of it), so a value sealed with another key is recognised as
such and reported clearly rather than failing as "altered". The *context* (for a TOTP secret,
the user's id) is GCM's associated data: a sealed value copied onto another user's row does not
open there.

`KeyFileBox` re-reads its file when it meets a value sealed with a key it does not hold: after
`callrouter auth rotate-key` installs a new key, a running service opens the re-sealed values
without a restart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets as _random
import stat
import threading
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
PREFIX = "aesgcm1"


class SealingError(Exception):
    """A key file or a sealed value that cannot be used; the message says what to do."""


class KeyFileError(SealingError):
    pass


class WrongKey(SealingError):
    """The value was sealed with another key than the one held."""

    def __init__(self, message: str, key_id: str) -> None:
        super().__init__(message)
        self.key_id = key_id


class Unsealable(SealingError):
    """The value is not a sealed value, or does not open with its key and context."""


def new_key() -> bytes:
    return _random.token_bytes(KEY_BYTES)


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"callrouter key id\0" + key).hexdigest()[:16]


def is_sealed(value: str | None) -> bool:
    return bool(value) and value.startswith(PREFIX + "$")


def sealed_key_id(value: str) -> str | None:
    """The key id a sealed value names, or None for a value that is not sealed."""
    if not is_sealed(value):
        return None
    parts = value.split("$")
    return parts[1] if len(parts) == 3 else None


def write_key_file(path: Path, key: bytes) -> None:
    """Write `key` to a new file readable by its owner only; refuses to overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"the key file {path} already exists: not overwritten") from None
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(key).decode() + "\n")
        f.flush()
        os.fsync(f.fileno())


def create_key_file(path: Path) -> bytes:
    key = new_key()
    write_key_file(path, key)
    return key


def read_key_file(path: Path) -> bytes:
    """The key in `path`; refused when missing, readable by others or malformed."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyFileError(f"the key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"the key file {path} cannot be read: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"the key file {path} is open to others (mode {stat.S_IMODE(mode):04o}): "
                           f"run `chmod 600 {path}`")
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"the key file {path} does not hold a {KEY_BYTES}-byte key in base64")
    return key


class Sealer(Protocol):
    """What a store needs of a box: SecretBox, or KeyFileBox."""

    @property
    def key_id(self) -> str: ...

    def seal(self, plaintext: str, context: str) -> str: ...

    def open(self, value: str, context: str) -> str: ...


class SecretBox:
    """Seals and opens values with one key (AES-256-GCM, a random nonce per value)."""

    def __init__(self, key: bytes, where: str = "the key") -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a key is {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        self.key_id = key_id(key)
        self.where = where

    def seal(self, plaintext: str, context: str) -> str:
        nonce = _random.token_bytes(NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return f"{PREFIX}${self.key_id}${base64.urlsafe_b64encode(sealed).decode().rstrip('=')}"

    def open(self, value: str, context: str) -> str:
        found = sealed_key_id(value)
        if found is None:
            raise Unsealable("not a sealed value")
        if found != self.key_id:
            raise WrongKey(f"sealed with key {found}, but {self.where} is key {self.key_id}", found)
        body = value.split("$")[2]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode("utf-8"))
        except (binascii.Error, ValueError, InvalidTag):
            raise Unsealable(f"does not open with key {self.key_id} for {context}: altered, or copied "
                             "from another record") from None
        return plain.decode("utf-8")


class KeyFileBox:
    """A SecretBox whose key is read from a file, re-read when a value names another key."""

    def __init__(self, path: Path, key: bytes | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._box = SecretBox(read_key_file(path) if key is None else key, f"the key file {path}")

    @property
    def key_id(self) -> str:
        return self._box.key_id

    def seal(self, plaintext: str, context: str) -> str:
        return self._box.seal(plaintext, context)

    def open(self, value: str, context: str) -> str:
        box = self._box
        try:
            return box.open(value, context)
        except WrongKey:
            with self._lock:
                if self._box is box:  # the key may have been rotated under us: read the file again
                    self._box = SecretBox(read_key_file(self.path), f"the key file {self.path}")
            return self._box.open(value, context)
