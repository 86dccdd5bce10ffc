"""CLI: `callrouter kamailio config|registrations`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from callrouter.config import ConfigError, Settings, add_config_argument, settings_for_cli
from callrouter.sip import kamailio
from callrouter.sip.registrations import RegistrationsUnavailable, registrations_source
from callrouter.sip.settings import SipSettings, SipSettingsError, aligned_with_media

DEFAULT_DIR = "var/kamailio"


def register(sub) -> None:
    parser = sub.add_parser("kamailio", help="the SIP edge: generated config, registrations")
    k_sub = parser.add_subparsers(dest="kamailio_command", metavar="ACTION")
    k_sub.required = True
    config = _cmd(k_sub, "config", "render Kamailio's config from the settings", _config)
    config.add_argument("--write", metavar="DIR", nargs="?", const=DEFAULT_DIR,
                        help=f"write kamailio.cfg, dispatcher.list, tls.cfg into DIR "
                        f"(default {DEFAULT_DIR}) instead of printing kamailio.cfg")
    _cmd(k_sub, "registrations", "list the softphones registered at Kamailio (with sip.registrations: "
         "database, at every node's edge)", _registrations)


def _cmd(sub, name: str, help_: str, func) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_)
    add_config_argument(parser)
    parser.set_defaults(func=lambda args: _run(func, args))
    return parser


def sip_settings(settings: Settings) -> SipSettings:
    """The edge's settings, its worker ports taken from the media pool's."""
    sip = getattr(settings, "sip", None) or SipSettings()
    media = getattr(settings, "media", None)
    return aligned_with_media(sip, media) if media is not None else sip


def realm_of(settings: Settings) -> str:
    return settings.auth.sip_realm


def _run(func, args) -> int:
    try:
        settings = settings_for_cli(args.config)
        return func(args, settings, sip_settings(settings).check())
    except (ConfigError, SipSettingsError, kamailio.RenderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _config(args, settings: Settings, sip: SipSettings) -> int:
    if args.write:
        files = kamailio.write_config(Path(args.write), sip, realm=realm_of(settings),
                                      database_url=settings.database_url)
        print(f"wrote {files.config}, {files.dispatcher_list}"
              + (f", {files.tls_config}" if files.tls_config else ""))
        print(" ".join(kamailio.command(sip, files)))
        return 0
    files = kamailio.layout(Path(DEFAULT_DIR), sip)
    sys.stdout.write(kamailio.render(sip, realm=realm_of(settings),
                                     database_url=settings.database_url, files=files))
    return 0


def _registrations(args, settings: Settings, sip: SipSettings) -> int:
    from sqlalchemy import create_engine

    engine = create_engine(settings.database_url) if sip.registrations == "database" else None
    try:
        registered = registrations_source(sip, engine).fetch()
    except RegistrationsUnavailable as exc:
        where = "the location table" if engine is not None else "Kamailio"
        print(f"error: {where} did not answer: {exc}", file=sys.stderr)
        return 1
    finally:
        if engine is not None:
            engine.dispose()
    for username in sorted(registered):
        for contact in registered[username]:
            print(f"{username}\t{contact.address}\t{contact.socket}\texpires in {contact.expires}s")
    return 0
