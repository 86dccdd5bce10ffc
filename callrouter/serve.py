"""CLI: `callrouter serve`: the service tree of callrouter.app, run on the reactor until a signal.

The service is three parts: the media service (the worker processes), the SIP edge (Kamailio) and
the controller, which reaches the workers through the media service's socket and the edge through
its RPC. `serve` runs the three in one process; `callrouter media`, `callrouter edge` and
`callrouter controller` run each alone (deploy/systemd/), so that restarting the controller (an
upgrade, a settings change) leaves the workers, the edge and the calls running.

The controller refuses a database behind this version's migrations, says "running" only once calls can be
served, stops on SIGINT/SIGTERM (a second one while stopping does nothing more) and, on SIGHUP,
reads its settings file again (callrouter.live_settings: what can apply live does, the rest is
named with the unit to restart) and reloads the dialplans.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

from callrouter.config import ConfigError, Settings, add_config_argument, settings_for_cli

logger = logging.getLogger(__name__)


def register(sub) -> None:
    s = sub.add_parser("serve", help="run the service: SIP edge, media workers, controller, admin API")
    add_config_argument(s)
    s.set_defaults(func=cmd_serve)
    s = sub.add_parser("controller", help="run the controller alone (the media and edge services run apart)")
    add_config_argument(s)
    s.set_defaults(func=lambda args: cmd_serve(args, whole=False))
    s = sub.add_parser("media", help="run the media service alone: the worker processes, on var/media.sock")
    add_config_argument(s)
    s.set_defaults(func=lambda args: cmd_part(args, "media"))
    s = sub.add_parser("edge", help="run the SIP edge alone: Kamailio configured from the settings")
    add_config_argument(s)
    s.set_defaults(func=lambda args: cmd_part(args, "edge"))


def _reactor() -> Any:
    from twisted.internet import asyncioreactor

    if "twisted.internet.reactor" not in sys.modules:
        asyncioreactor.install()
    from twisted.internet import reactor

    return reactor


def _settings(args) -> Settings | None:
    """The settings file's values, its log level in force (the command line's kept aside in
    `args.cli_level` for a reload that names none)."""
    try:
        settings = settings_for_cli(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        return None
    args.cli_level = logging.getLogger().level
    if settings.log_level is not None:
        logging.getLogger().setLevel(settings.log_level)
    return settings


def _run(top: Any, reactor: Any, on_hup: Any = None, then: Any = None) -> None:
    """Run `top` on the reactor until SIGINT/SIGTERM (a second one while stopping does nothing
    more); SIGHUP calls `on_hup`; `then` is called once it started."""
    reactor.callWhenRunning(top.startService)
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    stopping: list[bool] = []

    def stop_once() -> None:
        if not stopping:
            stopping.append(True)
            reactor.stop()

    def stop(*_: Any) -> None:
        reactor.callFromThread(stop_once)

    def own_signals() -> None:
        # Ctrl-C must stop us even when started from a script that left SIGINT ignored (then
        # Twisted would not install its own handler).
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        if on_hup is not None:
            signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(on_hup))

    reactor.callWhenRunning(own_signals)
    if then is not None:
        reactor.callWhenRunning(then)
    reactor.run()


def cmd_part(args, part: str) -> int:
    """`callrouter media` / `callrouter edge`: one part of the service, alone."""
    reactor = _reactor()
    from callrouter.app import edge_service, media_service

    settings = _settings(args)
    if settings is None:
        return 1
    top = media_service(settings, reactor) if part == "media" else edge_service(settings, reactor)
    if top is None:
        print("error: sip.enabled is false: no edge to run", file=sys.stderr)
        return 1
    logger.info("callrouter %s starting", part)
    _run(top, reactor)
    return 0


def cmd_serve(args, whole: bool = True) -> int:
    reactor = _reactor()
    from callrouter.app import build

    settings = _settings(args)
    if settings is None:
        return 1
    if (problem := _schema_problem(settings.database_url)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    from callrouter.auth.sealing import SealingError
    from callrouter.web.tls import TlsFilesError

    try:
        top, parts = build(settings, reactor, whole=whole)
    except (SealingError, TlsFilesError) as exc:  # a key file missing or not the database's; bad TLS files
        print(f"error: {exc}", file=sys.stderr)
        return 1
    live = _live_settings(args, settings, parts, reactor, whole)

    def on_hup() -> None:
        live.reload()
        parts["dialplans"].reload()

    _run(top, reactor, on_hup=on_hup, then=lambda: _when_serving(settings, parts, reactor))
    return 0


def _live_settings(args, settings: Settings, parts: dict[str, Any], reactor: Any, whole: bool) -> Any:
    """The settings file read again on SIGHUP (callrouter.live_settings), its reloads audited as
    the system, off the reactor."""
    from twisted.internet import threads

    from callrouter.config import settings_path_for_cli
    from callrouter.live_settings import SettingsReload, running_parts
    from callrouter.ports import utc_from_clock
    from callrouter.store.audit import SYSTEM

    def audit(target: str, before: dict, after: dict, details: dict) -> None:
        threads.deferToThread(parts["audit"].record, SYSTEM, "settings.reloaded", target, utc_from_clock(reactor),
                              before, after, details).addErrback(
            lambda f: logger.error("settings reload not audited: %s", f.getErrorMessage()))

    return SettingsReload(settings_path_for_cli(args.config), settings, running_parts(parts, args.cli_level), audit,
                          parts["metrics"].registry, whole)


def _schema_problem(url: str) -> str | None:
    from callrouter.store.db import Database

    db = Database.from_url(url)
    try:
        return db.schema_problem()
    finally:
        db.dispose()


def _when_serving(settings: Settings, parts: dict[str, Any], reactor: Any) -> None:
    """Say "running" only once a call can be served: every media worker ready and, with the edge,
    its dispatcher sending them calls (rather than after its next OPTIONS probe round)."""
    from twisted.internet import defer

    from callrouter.sip.dispatch import activate_workers
    from callrouter.sip.registrations import RegistrationsClient

    logger.info("callrouter starting: waiting for the media workers")
    ready = parts["pool"].when_ready()
    if settings.sip.enabled:
        ready.addCallback(lambda statuses: activate_workers(
            RegistrationsClient(settings.sip.rpc_port), settings.edge,
            [s.sip_port for s in statuses if s.state == "ready"], reactor))
    if parts.get("readoption") is not None:  # a controller apart: the calls the workers kept, first
        parts["readoption"].settle(parts["pool"].when_ready()).addErrback(
            lambda f: logger.error("re-adoption: %s", f.getErrorMessage()))
    ready.addCallback(lambda _: _announce(settings, parts))
    ready.addErrback(lambda failure: failure.trap(defer.CancelledError))  # stopped before ready


def _announce(settings: Settings, parts: dict[str, Any]) -> None:
    registry = parts["registry"]
    logger.info("callrouter running: %d practice(s) loaded; admin API on %s:%s; metrics on %s:%s/metrics",
                len(registry.dialplans), settings.http.host, settings.http.port,
                settings.metrics.host, settings.metrics.port)
    if settings.sip.enabled:
        logger.info("SIP edge (Kamailio) on %s: UDP %s, TCP %s, TLS %s", settings.sip.listen_address,
                    settings.sip.udp_port, settings.sip.tcp_port, settings.sip.tls_port)
