"""What the recording tests listen for: pure tones in 16-bit PCM, told apart by the Goertzel filter,
and the SIPp phones that play them (a patient calling, a secretary answering)."""

from __future__ import annotations

import math
import wave
from pathlib import Path

from callrouter.devtools.rtp import tone_pcap
from callrouter.devtools.sipp_alert import called_back_patient_phone, media_steps
from callrouter.devtools.sipp_xml import HEAD, INVITE, WAIT_BYE, play

CALLER_HZ = 620.0
SECRETARY_HZ = 1460.0
FRAME = 160  # 20 ms at 8 kHz


def tone_power(samples, frequency: float, rate: int = 8000) -> float:
    """The share of a frame's energy at `frequency` (0..1)."""
    energy = sum(x * x for x in samples)
    if energy < len(samples) * 200 * 200:
        return 0.0
    coeff = 2 * math.cos(2 * math.pi * frequency / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (len(samples) / 2 * energy)


def channels(path: Path) -> tuple[int, int, list[list[int]]]:
    """(channels, rate, samples of each channel) of a 16-bit WAV file."""
    import array
    import sys

    with wave.open(str(path), "rb") as w:
        n, rate, data = w.getnchannels(), w.getframerate(), w.readframes(w.getnframes())
    samples = array.array("h")
    samples.frombytes(data)
    if sys.byteorder == "big":
        samples.byteswap()
    return n, rate, [list(samples[i::n]) for i in range(n)]


def tone_frames(samples: list[int], frequency: float, purity: float = 0.6) -> int:
    """How many 20 ms frames are mostly the tone at `frequency`."""
    return sum(1 for i in range(0, len(samples) - FRAME + 1, FRAME)
               if tone_power(samples[i:i + FRAME], frequency) >= purity)


def caller_with_tone(directory: Path, name: str, steps: list[tuple], end: str = "wait_bye",
                     wait_bye_ms: int = 60000) -> Path:
    """A patient's call (INVITE to [service], media at [$rtp_port]): once answered, `steps`
    ("tone", (Hz, ms)) / ("digit", "9") / ("pause", ms), or ("tone_bg", (Hz, ms)): a tone that
    goes on while the next steps run (the service's BYE may come during it), then waits for the
    service's BYE."""
    body = HEAD.format(name=name) + INVITE
    for kind, value in steps:
        if kind == "tone_bg":
            body += play(str(tone_pcap(directory, value[0], value[1])))
        else:
            body += media_steps(directory, [(kind, value)], event_pt=101)
    body += WAIT_BYE.format(timeout_ms=wait_bye_ms) + "</scenario>\n"
    path = directory / f"{name}.xml"
    path.write_text(body)
    return path


def secretary_with_tone(directory: Path, name: str, steps: list[tuple]) -> Path:
    """A phone that rings, answers with media at [$rtp_port], runs `steps`, then hangs up."""
    return called_back_patient_phone(directory, name, steps, answer_after_ms=300)
