"""CLI: `callrouter serve` (the service tree lives in callrouter.app)."""

from __future__ import annotations

from callrouter.config import add_config_argument


def register(sub) -> None:
    s = sub.add_parser("serve", help="run the service: SIP edge, media workers, controller, admin API")
    add_config_argument(s)
    s.set_defaults(func=_serve)


def _serve(args) -> int:
    from callrouter.app import cmd_serve

    return cmd_serve(args)
