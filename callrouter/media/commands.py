"""CLI: `callrouter prompts build` (the audio callers hear, from the catalogue and the dialplans)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from callrouter.prompts import DEFAULT_DIR, Catalogue, PromptBuildError, build

logger = logging.getLogger(__name__)

DEFAULT_DIALPLANS = DEFAULT_DIR.parent / "dialplans"


def register(sub) -> None:
    prompts = sub.add_parser("prompts", help="prompt audio files")
    prompts_sub = prompts.add_subparsers(dest="prompts_command", metavar="SUBCOMMAND")
    prompts_sub.required = True
    b = prompts_sub.add_parser("build", help="generate 8 kHz WAV files with espeak-ng and sox (only what changed)")
    b.add_argument("--prompts", type=Path, default=DEFAULT_DIR, help="prompt catalogue directory")
    b.add_argument("--out", type=Path, default=None, help="output directory (default: <prompts>/build)")
    b.add_argument("--dialplans", type=Path, nargs="*", default=None,
                   help="dialplan files or directories whose own prompt texts are built too "
                        "(default: ./dialplans when it exists)")
    b.add_argument("--voice", default="fr", help="espeak-ng voice (default: fr)")
    b.set_defaults(func=run_build)


def practice_texts(paths: list[Path], catalogue: Catalogue) -> tuple[dict[str, dict[str, str]], int]:
    """Each valid dialplan's own prompt texts, by practice; and how many files had errors."""
    from callrouter.dialplan.loader import load_paths  # the CLI is the outer layer; the media plane is not

    result = load_paths(paths, catalogue)
    for err in result.errors:
        print(f"warning: {err}", file=sys.stderr)
    texts = {d.practice: dict(d.prompts) for d in result.dialplans if d.prompts}
    return texts, len(result.failed_files)


def run_build(args: argparse.Namespace) -> int:
    from callrouter.prompts import Voice

    catalogue = Catalogue.load(args.prompts)
    dialplans = args.dialplans
    if dialplans is None:
        dialplans = [DEFAULT_DIALPLANS] if DEFAULT_DIALPLANS.is_dir() else []
    extra, _ = practice_texts(dialplans, catalogue) if dialplans else ({}, 0)
    try:
        report = build(catalogue, args.out, extra_texts_by_practice=extra, voice=Voice(name=args.voice))
    except PromptBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for problem in report.problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"{len(report.generated)} generated, {len(report.up_to_date)} up to date, "
          f"{len(report.recorded)} recorded, {len(report.problems)} problem(s)")
    return 0 if report.ok else 1
