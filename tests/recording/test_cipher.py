"""Audio encrypted at rest: what goes in comes out, and nothing else opens."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.auth.sealing import KeyFileError, new_key
from callrouter.recording.cipher import CHUNK, MediaKey, Unreadable, WrongKey

KEY = MediaKey(new_key())


def sealed(data: bytes, context: str = "rec-1", key: MediaKey = KEY) -> bytes:
    out = io.BytesIO()
    result = key.seal(io.BytesIO(data), out, context)
    assert result.sha256 == hashlib.sha256(data).hexdigest() and result.size == len(out.getvalue())
    return out.getvalue()


def opened(blob: bytes, context: str = "rec-1", key: MediaKey = KEY) -> bytes:
    return b"".join(key.chunks(io.BytesIO(blob), context))


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=3 * CHUNK + 7) | st.sampled_from([b"", b"x" * CHUNK, b"y" * (2 * CHUNK)]))
def test_what_is_sealed_opens_again_and_is_not_in_clear(data):
    blob = sealed(data)
    assert opened(blob) == data
    if len(data) >= 32:
        assert data[:32] not in blob


@pytest.mark.parametrize("cut", [1, 17, CHUNK + 16 + 40 + 5])
def test_a_file_cut_short_or_altered_does_not_open(cut):
    blob = sealed(os.urandom(2 * CHUNK + 100))
    with pytest.raises(Unreadable):
        opened(blob[:-cut])
    altered = bytearray(blob)
    altered[len(blob) - cut] ^= 1
    with pytest.raises(Unreadable):
        opened(bytes(altered))


def test_a_file_whose_final_chunk_is_dropped_does_not_open():
    """Exactly one chunk shorter (a whole chunk removed at the end) is still refused: the last
    chunk kept was not sealed as the final one."""
    blob = sealed(b"z" * (2 * CHUNK + 10))
    header = 36
    assert len(blob) == header + 2 * (CHUNK + 16) + 10 + 16
    with pytest.raises(Unreadable):
        opened(blob[:header + 2 * (CHUNK + 16)])


def test_another_records_file_or_another_key_does_not_open():
    blob = sealed(b"bonjour" * 100, context="rec-1")
    with pytest.raises(Unreadable):
        opened(blob, context="rec-2")
    other = MediaKey(new_key())
    with pytest.raises(WrongKey) as wrong:
        opened(blob, key=other)
    assert wrong.value.key == KEY.key_id


def test_the_key_file_is_created_once_and_never_replaced(tmp_path):
    path = tmp_path / "media.key"
    with pytest.raises(KeyFileError):
        MediaKey.from_file(path, create=False)
    first = MediaKey.from_file(path, create=True)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert MediaKey.from_file(path, create=True).key_id == first.key_id
    path.chmod(0o644)
    with pytest.raises(KeyFileError):
        MediaKey.from_file(path, create=False)


def test_seal_file_writes_aside_then_renames(tmp_path):
    plain = tmp_path / "plain.wav"
    plain.write_bytes(b"RIFF" + os.urandom(5000))
    target = tmp_path / "vault" / "x.enc"
    target.parent.mkdir()
    result = KEY.seal_file(plain, target, "x")
    assert KEY.open_bytes(target, "x", result.sha256) == plain.read_bytes()
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert list(target.parent.iterdir()) == [target]
    with pytest.raises(Unreadable):
        KEY.open_bytes(target, "x", "0" * 64)
