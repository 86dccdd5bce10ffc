"""The audio of a recording before it is sealed: the two sides of a conversation laid side by side as
one stereo WAV (the caller on the left channel, the secretary on the right), and a voicemail
message cut to its size limit.

The worker writes each side as 8 kHz mono 16-bit PCM, both started on one conference clock, so
sample n of one file and sample n of the other were heard at the same moment; the shorter is
padded with silence. A side that is missing or unreadable leaves a mono file of the other.
"""

from __future__ import annotations

import array
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

FRAMES_PER_READ = 8000


class AudioError(Exception):
    pass


@dataclass(frozen=True)
class Merged:
    channels: int
    duration_seconds: float
    frames: int


def _open(path: Path) -> wave.Wave_read | None:
    try:
        wav = wave.open(str(path), "rb")
    except (OSError, EOFError, wave.Error):
        return None
    if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
        wav.close()
        return None
    return wav


def merge_stereo(left: Path, right: Path, out: Path) -> Merged:
    """`left` and `right` (mono 16-bit) as one stereo file `out`; mono when one side is unusable."""
    a, b = _open(left), _open(right)
    if a is None and b is None:
        raise AudioError("neither side of the conversation was recorded")
    try:
        if a is None or b is None:
            return _copy_mono(a or b, out)
        if a.getframerate() != b.getframerate():
            raise AudioError("the two sides were recorded at different rates")
        rate = a.getframerate()
        frames = max(a.getnframes(), b.getnframes())
        with wave.open(str(out), "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(rate)
            done = 0
            while done < frames:
                n = min(FRAMES_PER_READ, frames - done)
                l_, r_ = _samples(a, n), _samples(b, n)
                both = array.array("h", bytes(4 * n))
                both[0::2] = l_
                both[1::2] = r_
                w.writeframes(_little(both))
                done += n
        return Merged(2, round(frames / rate, 2), frames)
    finally:
        for wav in (a, b):
            if wav is not None:
                wav.close()


def _samples(wav: wave.Wave_read, n: int) -> array.array:
    data = array.array("h")
    data.frombytes(wav.readframes(n))
    if sys.byteorder == "big":
        data.byteswap()
    if len(data) < n:
        data.extend([0] * (n - len(data)))
    return data


def _little(samples: array.array) -> bytes:
    if sys.byteorder == "big":
        samples = array.array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def _copy_mono(wav: wave.Wave_read, out: Path) -> Merged:
    rate, frames = wav.getframerate(), wav.getnframes()
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        while chunk := wav.readframes(FRAMES_PER_READ):
            w.writeframes(chunk)
    return Merged(1, round(frames / rate, 2), frames)


def cut_to_size(path: Path, max_bytes: int) -> bool:
    """Shorten a WAV file to at most `max_bytes` (its beginning kept, whole frames); True when cut."""
    if path.stat().st_size <= max_bytes:
        return False
    wav = _open(path)
    if wav is None:
        raise AudioError("the message is not a mono 16-bit WAV file")
    with wav:
        rate, keep = wav.getframerate(), max(0, (max_bytes - 44) // 2)
        data = wav.readframes(keep)
    part = path.with_name(path.name + ".cut")
    with wave.open(str(part), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data)
    part.replace(path)
    return True


def duration_of(path: Path) -> float | None:
    wav = _open(path)
    if wav is None:
        return None
    with wav:
        return round(wav.getnframes() / wav.getframerate(), 2)
