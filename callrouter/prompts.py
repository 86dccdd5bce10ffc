"""The prompt catalogue: French texts by name, where their audio files are, and how they are built.

Resolution order for a practice's prompt: a recorded file (prompts/recorded/<practice>/<name>.wav,
then prompts/recorded/<name>.wav), then the generated file of the practice's own text, then the
generated file of the shared catalogue text.

`build()` turns every text into an 8 kHz mono 16-bit WAV under prompts/build/ (espeak-ng speaks
it, sox resamples and normalises it), and makes the music on hold (a soft chord loop synthesised
by sox: no third-party audio) and the French ringback tone (`ringback`). A manifest of hashes (text + voice + tool versions) skips what is
already up to date. A name with a recorded file gets no generated file: the recording is played.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import yaml

logger = logging.getLogger(__name__)

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "prompts"
MUSIC_ON_HOLD = "music_on_hold"
RINGBACK = "ringback"
BEEP = "beep"
# Names whose audio is synthesised by the build rather than spoken from a text.
GENERATED = frozenset({MUSIC_ON_HOLD, RINGBACK, BEEP})
MANIFEST = "manifest.json"


class CatalogueError(ValueError):
    pass


@dataclass(frozen=True)
class Catalogue:
    root: Path
    texts: Mapping[str, str] = field(default_factory=dict)
    recorded: frozenset[str] = frozenset()

    @classmethod
    def load(cls, root: Path = DEFAULT_DIR) -> "Catalogue":
        path = root / "catalogue.yaml"
        texts: dict[str, str] = {}
        if path.exists():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(data, dict):
                raise CatalogueError(f"{path}: expected a mapping of prompt name to French text")
            for name, text in data.items():
                if not isinstance(text, str) or not text.strip():
                    raise CatalogueError(f"{path}: prompt {name!r} needs a non-empty text")
                texts[str(name)] = " ".join(text.split())
        recorded_dir = root / "recorded"
        recorded = frozenset(p.stem for p in recorded_dir.glob("*.wav")) if recorded_dir.is_dir() else frozenset()
        return cls(root=root, texts=texts, recorded=recorded)

    def names(self) -> frozenset[str]:
        return frozenset(self.texts) | self.recorded | GENERATED

    def knows(self, name: str, practice_texts: Mapping[str, str] | None = None) -> bool:
        return (name in self.texts or name in self.recorded or name in GENERATED
                or bool(practice_texts and name in practice_texts))

    def build_dir(self) -> Path:
        return self.root / "build"

    def wav_path(self, name: str, practice: str | None = None) -> Path:
        """Where the audio of a prompt is expected, most specific first (see module docstring)."""
        candidates = []
        if practice:
            candidates += [self.root / "recorded" / practice / f"{name}.wav", self.root / "recorded" / f"{name}.wav",
                           self.build_dir() / practice / f"{name}.wav"]
        else:
            candidates.append(self.root / "recorded" / f"{name}.wav")
        candidates.append(self.build_dir() / f"{name}.wav")
        for c in candidates:
            if c.exists():
                return c
        return candidates[-1]


# ---------------------------------------------------------------------------------------------
# Build


class PromptBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class Voice:
    """espeak-ng settings; part of every prompt's hash, so changing one rebuilds everything."""

    name: str = "fr"          # espeak-ng voice (French, France)
    speed: int = 145          # words per minute: a little slower than default, for the phone
    pitch: int = 45
    sample_rate: int = 8000
    peak_db: float = -3.0     # sox normalises each prompt to this peak


@dataclass
class BuildReport:
    generated: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


Runner = Callable[..., subprocess.CompletedProcess]

# Music on hold: four soft plucked chords (C, Am, F, G), 2.5 s each, looped by the worker.
HOLD_CHORDS = ((261.63, 329.63, 392.00), (220.00, 261.63, 329.63), (174.61, 220.00, 261.63),
               (196.00, 246.94, 293.66))
HOLD_RECIPE = "pluck-chords-v1:" + ";".join(",".join(map(str, c)) for c in HOLD_CHORDS)
# The French ringback tone (what a caller hears while a secretary's phone rings): 440 Hz,
# 1.5 s on, 3.5 s off; one cycle, looped by the worker.
RINGBACK_RECIPE = "fr-ringback-v2-nodither:440Hz:1.5on:3.5off"
# The tone before a voicemail recording starts: 0.4 s at 1 kHz.
BEEP_RECIPE = "beep-v1:1000Hz:0.4s"


def build(catalogue: Catalogue, out_dir: Path | None = None,
          extra_texts_by_practice: Mapping[str, Mapping[str, str]] | None = None,
          voice: Voice = Voice(), run: Runner = subprocess.run) -> BuildReport:
    """Generate the missing or outdated WAV files of the catalogue and of each practice's texts."""
    out = Path(out_dir) if out_dir is not None else catalogue.build_dir()
    out.mkdir(parents=True, exist_ok=True)
    tools = _tool_versions(run)
    manifest_path = out / MANIFEST
    old = _read_manifest(manifest_path)
    new: dict[str, str] = {}
    report = BuildReport()
    jobs: list[tuple[str | None, str, str]] = [(None, n, t) for n, t in sorted(catalogue.texts.items())]
    for practice, texts in sorted((extra_texts_by_practice or {}).items()):
        if not practice or "/" in practice or practice.startswith("."):
            report.problems.append(f"practice id {practice!r} cannot name a directory")
            continue
        jobs += [(practice, n, " ".join(t.split())) for n, t in sorted(texts.items())]
    for practice, name, text in jobs:
        label = f"{practice}/{name}" if practice else name
        recorded = _recorded_file(catalogue.root, practice, name)
        if recorded is not None:
            report.recorded.append(label)
            problem = _check_recording(recorded, voice, run)
            if problem:
                report.problems.append(problem)
            continue
        key = f"{label}.wav"
        digest = _digest("tts", text, repr(voice), tools)
        target = out / key
        new[key] = digest
        if old.get(key) == digest and target.exists():
            report.up_to_date.append(label)
            continue
        try:
            _speak(text, target, voice, run)
        except PromptBuildError as exc:
            report.problems.append(f"{label}: {exc}")
            new.pop(key, None)
            continue
        report.generated.append(label)
    tones = ((MUSIC_ON_HOLD, HOLD_RECIPE, _hold_music), (RINGBACK, RINGBACK_RECIPE, _ringback), (BEEP, BEEP_RECIPE, _beep))
    for name, recipe, make in tones:
        key = f"{name}.wav"
        if _recorded_file(catalogue.root, None, name) is not None:
            report.recorded.append(name)
            continue
        digest = _digest("tone", recipe, str(voice.sample_rate), tools)
        new[key] = digest
        if old.get(key) == digest and (out / key).exists():
            report.up_to_date.append(name)
            continue
        try:
            make(out / key, voice.sample_rate, run)
            report.generated.append(name)
        except PromptBuildError as exc:
            report.problems.append(f"{name}: {exc}")
            new.pop(key, None)
    for stale in sorted(set(old) - set(new)):
        (out / stale).unlink(missing_ok=True)
    _write_atomically(manifest_path, json.dumps(new, indent=1, sort_keys=True).encode())
    return report


def _recorded_file(root: Path, practice: str | None, name: str) -> Path | None:
    candidates = ([root / "recorded" / practice / f"{name}.wav"] if practice else []) + \
        [root / "recorded" / f"{name}.wav"]
    return next((c for c in candidates if c.exists()), None)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _read_manifest(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PromptBuildError(f"{name} is not installed (Debian package {name}; see scripts/ensure-system-deps)")
    return path


def _tool_versions(run: Runner) -> str:
    versions = []
    for tool in ("espeak-ng", "sox"):
        done = run([_tool(tool), "--version"], capture_output=True, text=True, timeout=30)
        versions.append((done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else tool)
    return " | ".join(versions)


def _check(run: Runner, args: list[str], what: str, **kw) -> None:
    try:
        done = run(args, capture_output=True, timeout=120, **kw)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PromptBuildError(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace") if isinstance(done.stderr, bytes) else done.stderr
        raise PromptBuildError(f"{what} failed: {(err or '').strip()[:300]}")


def speak(text: str, target: Path, voice: Voice = Voice(), run: Runner = subprocess.run) -> None:
    """One text to one WAV file now (raises PromptBuildError): for texts only known at run time,
    such as a practice's name said by an alert call (callrouter.escalation.voice)."""
    _speak(" ".join(text.split()), Path(target), voice, run)


def _speak(text: str, target: Path, voice: Voice, run: Runner) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        raw, final = Path(tmp) / "raw.wav", Path(tmp) / "final.wav"
        # The text goes on stdin: a prompt starting with "-" is not an option.
        _check(run, [_tool("espeak-ng"), "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch),
                     "--stdin", "-w", str(raw)], "espeak-ng", input=text.encode("utf-8"))
        _check(run, [_tool("sox"), str(raw), "-r", str(voice.sample_rate), "-c", "1", "-b", "16",
                     "-e", "signed-integer", str(final), "gain", "-n", str(voice.peak_db)], "sox")
        os.replace(final, target)


def _hold_music(target: Path, rate: int, run: Runner) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        parts = []
        for i, chord in enumerate(HOLD_CHORDS):
            part = Path(tmp) / f"chord{i}.wav"
            synth = ["synth", "2.5"] + [x for f in chord for x in ("pluck", f"{f:.2f}")]
            # sox plucks only at 44.1-48 kHz; the final step resamples to the phone rate.
            _check(run, [_tool("sox"), "-r", "44100", "-c", str(len(chord)), "-n", "-r", "44100", "-c", "1",
                         "-b", "16", str(part), *synth, "fade", "q", "0.05", "2.5", "0.9"], "sox (hold music)")
            parts.append(str(part))
        final = Path(tmp) / "final.wav"
        _check(run, [_tool("sox"), *parts, "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer",
                     str(final), "repeat", "1", "gain", "-n", "-12"], "sox (hold music)")
        os.replace(final, target)


def _ringback(target: Path, rate: int, run: Runner) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        final = Path(tmp) / "final.wav"
        _check(run, [_tool("sox"), "-D", "-r", str(rate), "-c", "1", "-n", "-r", str(rate), "-c", "1", "-b", "16",
                     "-e", "signed-integer", str(final), "synth", "1.5", "sine", "440", "fade", "0.01", "1.5", "0.01",
                     "gain", "-n", "-10", "pad", "0", "3.5"], "sox (ringback)")
        os.replace(final, target)


def _beep(target: Path, rate: int, run: Runner) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        final = Path(tmp) / "final.wav"
        _check(run, [_tool("sox"), "-D", "-r", str(rate), "-c", "1", "-n", "-r", str(rate), "-c", "1", "-b", "16",
                     "-e", "signed-integer", str(final), "synth", "0.4", "sine", "1000", "fade", "0.01", "0.4", "0.02",
                     "gain", "-n", "-8"], "sox (beep)")
        os.replace(final, target)


def _check_recording(path: Path, voice: Voice, run: Runner) -> str | None:
    """A recorded prompt must be mono 16-bit PCM at the phone rate, or the worker cannot play it."""
    try:
        done = run([_tool("sox"), "--i", str(path)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{path}: cannot inspect: {exc}"
    info = done.stdout or ""
    if done.returncode != 0:
        return f"{path}: not a readable audio file"
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in info.splitlines()) if v}
    if fields.get("Channels") != "1" or fields.get("Sample Rate") != str(voice.sample_rate) \
            or fields.get("Precision") != "16-bit" or "Signed Integer PCM" not in fields.get("Sample Encoding", ""):
        return (f"{path}: must be mono 16-bit PCM at {voice.sample_rate} Hz; convert it with "
                f"`sox IN.wav -r {voice.sample_rate} -c 1 -b 16 -e signed-integer {path.name}`")
    return None


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
