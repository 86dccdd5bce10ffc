"""The service tree: the one place that wires everything, children started in order, stopped in
reverse. `callrouter serve` runs it.

Start order: database (checked at the latest migration by `cmd_serve`; close the calls a crash left open), call recorder, metrics, MQTT
events, dialplans, escalation engine (resumes pending chains), media workers, SIP edge, admin API. Stopping reverses it: the edge stops taking calls
first, workers hang up theirs, the recorder writes what is queued, the database closes last.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import signal
import sys
from typing import Any

from twisted.application.internet import TCPServer, TimerService
from twisted.application.service import MultiService, Service
from twisted.internet import defer, threads
from twisted.web.resource import Resource
from twisted.web.server import Site

from callrouter.config import ConfigError, Settings, settings_for_cli
from callrouter.controller.alerts import AlertCalls, AlertSettings
from callrouter.controller.calls import CallController
from callrouter.controller.desk import Desk
from callrouter.controller.legs import LegRouter
from callrouter.controller.recorder import CallRecorder
from callrouter.dialplan.feeds import RotaFeedService
from callrouter.dialplan.registry import DialplanRegistry
from callrouter.escalation.service import build_escalation, build_voice
from callrouter.events.build import build_events
from callrouter.events.card import practice_card
from callrouter.events.notifier import EventNotifier
from callrouter.media.pool import MediaPool
from callrouter.metrics import Metrics
from callrouter.ports import SecretaryDesk
from callrouter.prompts import Catalogue
from callrouter.sip.dispatch import activate_workers
from callrouter.sip.registrations import RegistrationsClient
from callrouter.sip.service import KamailioService
from callrouter.sip.settings import aligned_with_media
from callrouter.store.audit import AuditLog
from callrouter.store.calls import CallRepository, arrivals_since
from callrouter.store.db import Database
from callrouter.store.escalations import EscalationRepository
from callrouter.store.retention import PurgeService, RetentionPurger
from callrouter.store.tasks import TaskRepository
from callrouter.store.users import UserRepository
from callrouter.web.api import Api
from callrouter.web.escalations import EscalationApi
from callrouter.web.secretaries import SecretaryApi
from callrouter.web.service import admin_service
from callrouter.web.tasks import TaskApi

logger = logging.getLogger(__name__)


class StoreService(Service):
    """Closes the calls a previous run of this node left open. Migrating is an explicit step
    (`callrouter db upgrade`, the unit's ExecStartPre): `cmd_serve` refuses a database that is not
    at this version's latest migration, so several nodes never race to migrate one database."""

    name = "store"

    def __init__(self, db: Database, calls: CallRepository, reactor: Any):
        self.db, self.calls, self.reactor = db, calls, reactor

    def startService(self) -> None:
        closed = self.calls.close_orphans("controller_restart", _now(self.reactor))
        if closed:
            logger.warning("closed %d call(s) left open by the previous run", len(closed))
        super().startService()

    def stopService(self):
        super().stopService()
        self.db.dispose()


class RecorderService(Service):
    name = "call-recorder"

    def __init__(self, recorder: CallRecorder):
        self.recorder = recorder

    def startService(self) -> None:
        self.recorder.start()
        super().startService()

    def stopService(self):
        super().stopService()
        self.recorder.stop()


class DialplanService(TimerService):
    """Loads the dialplans, then reloads them when a file changes or on SIGHUP."""

    def __init__(self, registry: DialplanRegistry, poll_seconds: float, metrics: Metrics, events: EventNotifier):
        self.registry = registry
        self.metrics = metrics
        self.events = events
        super().__init__(poll_seconds, self._poll)
        self.setName("dialplans")

    def startService(self) -> None:
        self.reload()
        if not self.registry.dialplans:
            logger.error("no valid dialplan: every call will hear that the number is not served")
        super().startService()

    def _poll(self) -> None:
        if self.registry.changed_on_disk():
            self.reload()

    def reload(self) -> None:
        report = self.registry.reload()
        self.metrics.dialplan_errors.set(len(report.errors))
        self.events.practices_loaded(self.registry.dialplans)  # the practice cards, retained


class CallbackTasksService(TimerService):
    """Puts the callback tasks pending in the store back in line at start (after a restart, a
    task being called is back in line too: no call survives one), then expires overdue tasks
    every minute (those typed by secretaries are not in the controller's line)."""

    def __init__(self, repo: TaskRepository, controller: CallController, registry: DialplanRegistry, reactor: Any):
        super().__init__(60.0, self._expire)
        self.clock = reactor
        self._repo, self._controller, self._registry, self._reactor = repo, controller, registry, reactor

    def startService(self) -> None:
        now = self._controller.now()

        def load() -> list:
            self._repo.release_interrupted(now)
            return self._repo.pending(now)

        d = threads.deferToThread(load)
        d.addCallback(lambda views: self._controller.callbacks.restore(views, dict(self._registry.router.dialplans)))
        d.addErrback(lambda f: logger.error("callback tasks not reloaded: %s", f.getErrorMessage()))
        super().startService()

    def _expire(self) -> Any:
        d = threads.deferToThread(self._repo.expire_due, self._controller.now())
        d.addErrback(lambda f: logger.warning("callback task expiry deferred: %s", f.getErrorMessage()))
        return d


class CallCountsService(Service):
    """Seeds the controller's "calls today" from the call records at start, read on a thread."""

    def __init__(self, db: Database, controller: CallController):
        self._db, self._controller = db, controller

    def startService(self) -> None:
        super().startService()
        d = threads.deferToThread(arrivals_since, self._db, self._controller.counts.since())
        d.addCallback(self._controller.counts.restore)
        d.addErrback(lambda f: logger.error("calls today not seeded from the records: %s", f.getErrorMessage()))


class PoolMetrics(TimerService):
    """Samples the pool each second: workers ready, restarts (a slot's process changed), backlog."""

    def __init__(self, pool: MediaPool, metrics: Metrics, recorder: CallRecorder):
        self.pool, self.metrics, self.recorder = pool, metrics, recorder
        self._pids: dict[str, int] = {}
        super().__init__(1.0, self.sample)
        self.setName("pool-metrics")

    def sample(self) -> None:
        ready = 0
        for status in self.pool.status():
            if status.state == "ready":
                ready += 1
                previous = self._pids.get(status.name)
                if previous is not None and previous != status.pid:
                    self.metrics.worker_restarts.inc()
                self._pids[status.name] = status.pid
        self.metrics.workers.set(ready)
        self.metrics.record_backlog.set(self.recorder.pending())


class RegistrationsPoller(TimerService):
    """Tells the secretary desk which secretaries' softphones are registered at the edge, every 2 s."""

    def __init__(self, client: RegistrationsClient, desk: SecretaryDesk, reactor: Any, interval: float = 2.0):
        self.client, self.desk, self.reactor = client, desk, reactor
        self._unavailable = False
        super().__init__(interval, self.poll)
        self.setName("registrations")

    def poll(self):
        d = threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), self.client.registered_usernames)
        d.addCallbacks(self._got, self._failed)
        return d

    def _got(self, usernames: frozenset[str]) -> None:
        if self._unavailable:
            logger.info("edge registrations readable again")
        self._unavailable = False
        self.desk.registrations_changed(usernames)

    def _failed(self, failure) -> None:
        if not self._unavailable:  # the edge restarting: keep what we knew, say it once
            logger.warning("cannot read registrations from the edge: %s", failure.getErrorMessage())
        self._unavailable = True


def metrics_site(metrics: Metrics) -> Site:
    from prometheus_client.twisted import MetricsResource

    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry=metrics.registry))
    return Site(root)


def build(settings: Settings, reactor: Any) -> tuple[MultiService, dict[str, Any]]:
    """The whole service tree, and its main parts by name (for tests and signal handlers)."""
    top = MultiService()
    db = Database.from_url(settings.database_url)
    calls = CallRepository(db, node=settings.node)
    metrics = Metrics()
    StoreService(db, calls, reactor).setServiceParent(top)

    recorder = CallRecorder(CallRepository(db, node=settings.node))
    RecorderService(recorder).setServiceParent(top)

    catalogue = Catalogue.load(settings.prompts)
    metrics_http = TCPServer(settings.metrics.port, metrics_site(metrics), interface=settings.metrics.host)
    metrics_http.setName("metrics-http")
    metrics_http.setServiceParent(top)

    # Events stop after the pool and the edge (reverse order), so the last "ended" messages go out.
    events_service, events = build_events(settings.mqtt, settings.node, metrics.registry, reactor)
    if events_service is not None:
        events_service.setServiceParent(top)

    registry = DialplanRegistry([settings.dialplans], lambda: Catalogue.load(settings.prompts), lambda: _now(reactor),
                                feed_cache=settings.var_dir / "ical")
    dialplans = DialplanService(registry, settings.dialplan_poll_seconds, metrics, events)
    dialplans.setServiceParent(top)
    # On-call rotas published at a URL: fetched into var/ical/, which the registry watches.
    RotaFeedService(lambda: registry.dialplans, settings.var_dir / "ical", reactor).setServiceParent(top)

    escalation_repo = EscalationRepository(db, settings.node)

    controller_settings = settings.controller
    if settings.sip.enabled and controller_settings.secretary_domain is None:
        controller_settings = dataclasses.replace(
            controller_settings, secretary_domain=f"{settings.sip.listen_address}:{settings.sip.udp_port}")
    if controller_settings.state_file is None:
        controller_settings = dataclasses.replace(controller_settings, state_file=settings.var_dir / "secretaries.json")
    legs = LegRouter()  # the pool's observer: each leg's events to its call, callback task or alert call
    pool = MediaPool(settings.media, legs, reactor)
    desk = Desk(controller_settings, reactor, metrics, events)  # with the logins and pauses saved in var/
    controller = CallController(reactor, pool, recorder, lambda: registry.router,
                                lambda name, practice: str(catalogue.wav_path(name, practice)),
                                controller_settings, desk, legs, metrics, events=events,
                                # the engine is built below, on the alert calls that need this controller
                                escalate=(lambda session, tier: escalation.engine.escalate(session, tier))
                                if settings.escalation.enabled else None,
                                tasks=TaskRepository(db))
    # Alert calls (the escalation's `call` steps) dial through the pool and ask the controller
    # about the patient's call.
    esc = settings.escalation
    alerts = AlertCalls(reactor, pool, lambda name, practice: str(catalogue.wav_path(name, practice)),
                        AlertSettings(controller_settings.outbound_trunk, ring_timeout_s=esc.call_ring_timeout_seconds,
                                      digit_timeout_s=esc.call_digit_timeout_seconds, repeats=esc.call_repeats),
                        controller, legs)
    voice = build_voice(esc, escalation_repo, alerts, settings.var_dir, catalogue, reactor)  # None: SMS instead
    # Escalation after the dialplans (resumed chains need them), before the calls that start chains.
    escalation = build_escalation(esc, escalation_repo, lambda practice: registry.dialplans.get(practice),
                                  reactor, metrics.registry, voice=voice, events=events)
    if esc.enabled:
        escalation.engine.setServiceParent(top)
    pool.setServiceParent(top)
    PoolMetrics(pool, metrics, recorder).setServiceParent(top)
    CallbackTasksService(TaskRepository(db), controller, registry, reactor).setServiceParent(top)
    CallCountsService(db, controller).setServiceParent(top)

    if settings.sip.enabled:
        edge = KamailioService(aligned_with_media(settings.sip, settings.media), realm=settings.auth.sip_realm,
                               database_url=settings.database_url, config_dir=settings.var_dir / "kamailio",
                               reactor=reactor)
        edge.setServiceParent(top)
        RegistrationsPoller(RegistrationsClient(settings.sip.rpc_port), desk, reactor).setServiceParent(top)

    audit, users = AuditLog(db), UserRepository(db, settings.auth.totp_issuer, settings.auth.sip_realm)
    escalation_api = (EscalationApi(audit, escalation.repo, escalation.acknowledger, settings.escalation.inbound_sms_secret,
                                    escalation.start_from_thread, lambda practice: registry.dialplans.get(practice), calls)
                      if settings.escalation.enabled else None)
    def card_of(practice: str) -> dict | None:
        dialplan = registry.dialplans.get(practice)
        return practice_card(dialplan) if dialplan is not None else None

    task_api = TaskApi(audit, TaskRepository(db), users=users, calls=calls,
                       default_expiry=dt.timedelta(seconds=controller_settings.callback_expiry_s),
                       known_practice=lambda practice: practice in registry.dialplans,
                       call_now=lambda view, who: threads.blockingCallFromThread(
                           reactor, controller.callbacks.call_now, view, who))
    api = Api(users, calls, audit, registry, dt.timedelta(minutes=settings.auth.token_ttl_minutes), escalation_api,
              card_of, SecretaryApi(audit, desk, lambda f, *a: threads.blockingCallFromThread(reactor, f, *a)),
              task_api)
    purge = PurgeService(RetentionPurger(db, settings.retention), reactor, settings.retention.purge_interval_hours * 3600.0,
                         lambda f, *a: threads.deferToThreadPool(reactor, reactor.getThreadPool(), f, *a))
    admin_service(settings.http, api, reactor, purge).setServiceParent(top)
    parts = {"db": db, "calls": calls, "recorder": recorder, "registry": registry, "dialplans": dialplans,
             "controller": controller, "desk": desk, "pool": pool, "metrics": metrics, "escalation": escalation.engine}
    return top, parts


def _now(reactor: Any) -> dt.datetime:
    return dt.datetime.fromtimestamp(reactor.seconds(), dt.timezone.utc)


# --- `callrouter serve` ----------------------------------------------------------------------------

def cmd_serve(args) -> int:
    from twisted.internet import asyncioreactor

    if "twisted.internet.reactor" not in sys.modules:
        asyncioreactor.install()
    from twisted.internet import reactor

    try:
        settings = settings_for_cli(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        return 1
    if (problem := _schema_problem(settings.database_url)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    top, parts = build(settings, reactor)
    reactor.callWhenRunning(top.startService)
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)

    stopping: list[bool] = []

    def stop_once() -> None:  # a second Ctrl-C (or SIGTERM) while stopping: nothing more to do
        if not stopping:
            stopping.append(True)
            reactor.stop()

    def stop(*_: Any) -> None:
        reactor.callFromThread(stop_once)

    def own_signals() -> None:
        # Ctrl-C must stop us even when started from a script that left SIGINT ignored (then
        # Twisted would not install its own handler); SIGHUP reloads the dialplans.
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(parts["dialplans"].reload))

    reactor.callWhenRunning(own_signals)
    reactor.callWhenRunning(_when_serving, settings, parts, reactor)
    reactor.run()
    return 0


def _schema_problem(url: str) -> str | None:
    db = Database.from_url(url)
    try:
        return db.schema_problem()
    finally:
        db.dispose()


def _when_serving(settings: Settings, parts: dict[str, Any], reactor: Any) -> None:
    """Say "running" only once a call can be served: every media worker ready and, with the edge,
    its dispatcher sending them calls (rather than after its next OPTIONS probe round)."""
    logger.info("callrouter starting: waiting for the media workers")
    ready = parts["pool"].when_ready()
    if settings.sip.enabled:
        sip = aligned_with_media(settings.sip, settings.media)
        ready.addCallback(lambda statuses: activate_workers(
            RegistrationsClient(settings.sip.rpc_port), sip, [s.sip_port for s in statuses if s.state == "ready"],
            reactor))
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
