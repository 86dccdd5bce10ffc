"""The prompt build with the real espeak-ng and sox: phone-ready WAV files, rebuilt only when needed."""

from __future__ import annotations

import array
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from callrouter.prompts import BEEP, MUSIC_ON_HOLD, RINGBACK, Catalogue, Voice, build

pytestmark = pytest.mark.needs(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                reason="espeak-ng and sox (Debian packages) are needed")


def read_wav(path: Path) -> tuple[tuple[int, int, int], array.array]:
    with wave.open(str(path), "rb") as wav:
        params = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
        samples = array.array("h", wav.readframes(wav.getnframes()))
    return params, samples


def make_catalogue(root: Path, texts: dict[str, str]) -> Catalogue:
    root.mkdir(parents=True, exist_ok=True)
    (root / "catalogue.yaml").write_text("".join(f'{k}: "{v}"\n' for k, v in texts.items()), encoding="utf-8")
    return Catalogue.load(root)


def test_every_text_becomes_an_audible_8khz_mono_16bit_wav(tmp_path):
    cat = make_catalogue(tmp_path / "p", {"welcome": "Bonjour, cabinet médical.", "goodbye": "Au revoir."})
    report = build(cat, extra_texts_by_practice={"cab-x": {"welcome": "Bonjour, cabinet du docteur X."}})
    assert report.ok and sorted(report.generated) == [BEEP, "cab-x/welcome", "goodbye", MUSIC_ON_HOLD, RINGBACK, "welcome"]
    for path in (cat.wav_path("welcome"), cat.wav_path("welcome", "cab-x"), cat.wav_path(MUSIC_ON_HOLD)):
        params, samples = read_wav(path)
        assert params == (1, 2, 8000), path
        assert len(samples) > 8000 * 0.5 and max(map(abs, samples)) > 3000, f"{path} is silent"
    assert cat.wav_path("welcome", "cab-x") == tmp_path / "p" / "build" / "cab-x" / "welcome.wav"
    assert len(read_wav(cat.wav_path(MUSIC_ON_HOLD))[1]) >= 8000 * 10   # long enough to loop gently
    assert cat.knows(MUSIC_ON_HOLD) and MUSIC_ON_HOLD in cat.names()


def test_only_what_changed_is_rebuilt_and_stale_files_go(tmp_path):
    root = tmp_path / "p"
    cat = make_catalogue(root, {"a": "Premier message.", "b": "Deuxième message."})
    build(cat, extra_texts_by_practice={"cab": {"c": "Troisième."}})
    again = build(cat, extra_texts_by_practice={"cab": {"c": "Troisième."}})
    assert again.generated == [] and len(again.up_to_date) == 6
    cat = make_catalogue(root, {"a": "Premier message, modifié.", "b": "Deuxième message."})
    changed = build(cat)
    assert changed.generated == ["a"] and not (root / "build" / "cab" / "c.wav").exists()
    assert build(cat, voice=Voice(speed=160)).generated == ["a", "b"]   # voice settings are in the hash


def test_a_recorded_prompt_overrides_and_a_bad_recording_is_reported(tmp_path):
    root = tmp_path / "p"
    cat = make_catalogue(root, {"welcome": "Bonjour.", "goodbye": "Au revoir."})
    (root / "recorded").mkdir()
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(root / "recorded" / "welcome.wav"),
                    "synth", "1", "sine", "440"], check=True)
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", "-b", "16", str(root / "recorded" / "goodbye.wav"),
                    "synth", "1", "sine", "440"], check=True)
    cat = Catalogue.load(root)
    report = build(cat)
    assert sorted(report.recorded) == ["goodbye", "welcome"] and report.generated == [MUSIC_ON_HOLD, RINGBACK, BEEP]
    assert cat.wav_path("welcome") == root / "recorded" / "welcome.wav"
    assert len(report.problems) == 1 and "goodbye.wav: must be mono 16-bit PCM at 8000 Hz" in report.problems[0]


def test_cli_prompts_build(tmp_path):
    make_catalogue(tmp_path / "p", {"welcome": "Bonjour."})
    cli = [str(Path(sys.executable).with_name("callrouter")), "prompts", "build", "--prompts", str(tmp_path / "p"),
           "--out", str(tmp_path / "out"), "--dialplans"]
    first = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "4 generated, 0 up to date" in first.stdout
    second = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert "0 generated, 4 up to date" in second.stdout
    assert (tmp_path / "out" / "welcome.wav").exists()


def test_ringback_is_the_french_cadence(tmp_path):
    """440 Hz for 1.5 s then 3.5 s of silence: one cycle of the French ring tone, looped when played."""
    cat = make_catalogue(tmp_path / "p", {"welcome": "Bonjour."})
    assert build(cat).ok and cat.knows(RINGBACK)
    params, samples = read_wav(cat.wav_path(RINGBACK))
    assert params == (1, 2, 8000) and len(samples) == 5 * 8000
    assert max(map(abs, samples[:12000])) > 3000 and max(map(abs, samples[12200:])) == 0
