"""The `callrouter` command. Each command family lives in its own module and registers itself.

Only the module of the command being run is imported (the store's and the service's imports are
heavy; `callrouter check` must start fast); `--help` and unknown commands import them all.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Command name -> module exposing `register(subparsers)`; each adds its sub-commands with
# `set_defaults(func=...)` where func(args) -> int exit code.
COMMANDS = {
    "check": "callrouter.dialplan.commands",
    "simulate": "callrouter.dialplan.commands",
    "calendar": "callrouter.dialplan.commands",
    "db": "callrouter.store.commands",
    "users": "callrouter.store.commands",
    "auth": "callrouter.store.key_commands",
    "prompts": "callrouter.media.commands",
    "serve": "callrouter.serve",
    "controller": "callrouter.serve",
    "media": "callrouter.serve",
    "edge": "callrouter.serve",
    "kamailio": "callrouter.sip.commands",
    "report": "callrouter.reports.commands",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callrouter",
        description="Call routing and IVR for medical practices served by a tele-secretariat.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    wanted = next((a for a in (argv or []) if not a.startswith("-")), None)
    modules = (COMMANDS[wanted],) if wanted in COMMANDS else COMMAND_MODULES
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic lists its autogenerate plugins at INFO when first imported: not news for an operator.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
