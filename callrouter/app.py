"""The service tree: the one place that wires everything, children started in order, stopped in
reverse. `callrouter serve` (callrouter/serve.py) runs it.

`build` reads as the dependency graph: each part is built after what it uses and is complete when
built. Start order: database (checked at the latest migration by `cmd_serve`; close the calls a
crash left open), this node's lease, call recorder and state history, metrics, MQTT events, dialplans, the team
(read from the database, seeded once from the settings), escalation engine (on the node leading it: resumes
pending chains), media workers, SIP edge, the forwarding watch, the weekly reports, admin API. Stopping reverses it: the edge stops taking
calls first, workers hang up theirs, the recorder writes what is queued, the database closes last.
"""

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace
from typing import Any, Callable

from twisted.application.internet import TCPServer, TimerService
from twisted.application.service import IService, MultiService, Service
from twisted.internet import threads
from twisted.web.resource import Resource
from twisted.web.server import Site

from callrouter.cluster.build import ESCALATION, build_cluster, build_shared_desk
from callrouter.config import Settings
from callrouter.controller.alerts import AlertCalls, AlertSettings
from callrouter.controller.calls import CallController
from callrouter.controller.desk import Desk
from callrouter.controller.history import StateHistory
from callrouter.controller.team import TeamService
from callrouter.controller.legs import LegRouter
from callrouter.controller.readopt import CAUSE as RESTARTED, Readoption
from callrouter.controller.recorder import CallRecorder, Spill
from callrouter.controller.task_session import TaskSession
from callrouter.dialplan.feeds import RotaFeedService
from callrouter.dialplan.registry import DialplanRegistry
from callrouter.dialplan.service import DialplanService
from callrouter.domain.team import seed_team
from callrouter.escalation.service import build_escalation, build_voice
from callrouter.events.build import build_events
from callrouter.events.card import practice_card, tier_label
from callrouter.events.task_feed import AnnouncedTasks
from callrouter.media.link import WorkerLink
from callrouter.media.pool import MediaPool
from callrouter.media.service import MediaService, socket_path
from callrouter.media.pool_metrics import PoolMetrics
from callrouter.metrics import Metrics
from callrouter.observe.build import observers, service_level_sink
from callrouter.ports import utc_from_clock
from callrouter.prompts import Catalogue
from callrouter.recording.build import build_recording
from callrouter.reports.mailer import SmtpReportMailer
from callrouter.reports.render import render
from callrouter.reports.weekly import WeeklyReports
from callrouter.sip.dispatch import EdgeDispatcher
from callrouter.sip.registrations import RegistrationsClient, RegistrationsPoller, registrations_source
from callrouter.sip.service import KamailioService
from callrouter.store.audit import SYSTEM, AuditLog
from callrouter.store.calls import CallRepository, arrivals_since
from callrouter.store.db import Database
from callrouter.store.escalations import EscalationRepository
from callrouter.store.keys import open_keys
from callrouter.store.leases import FencedDatabase, LeaderChains, lease_store
from callrouter.store.reaping import build_reaper
from callrouter.store.kpi_queries import KpiQueries
from callrouter.store.reports import ReportOutbox
from callrouter.store.retention import PurgeService, RetentionPurger
from callrouter.store.tasks import TaskRepository
from callrouter.store.team import TeamRepository
from callrouter.store.sessions import ConsoleSessionRepository
from callrouter.store.users import UserRepository
from callrouter.store.watch import WatchRepository
from callrouter.watch.build import WATCH_LEAD, build_watch
from callrouter.web.api import Api
from callrouter.web.console import ConsoleApi
from callrouter.web.sessions import ConsoleSessions
from callrouter.web.sse import EventHub
from callrouter.web.escalations import EscalationApi
from callrouter.web.secretaries import SecretaryApi
from callrouter.web.oncall import OnCallApi
from callrouter.web.reports import ReportsApi
from callrouter.web.phone import PhoneApi
from callrouter.web.service import admin_service
from callrouter.web.team import TeamApi
from callrouter.web.wallboard import LiveView, WaitingNow, WallboardApi
from callrouter.web.tasks import TaskApi
from callrouter.web.watch import WatchApi

logger = logging.getLogger(__name__)


class StoreService(Service):
    """Closes the calls a previous run of this node left open. Migrating is an explicit step
    (`callrouter db upgrade`, the unit's ExecStartPre): `callrouter serve` refuses a database that is not
    at this version's latest migration, so several nodes never race to migrate one database."""

    name = "store"

    def __init__(self, db: Database, calls: CallRepository, reactor: Any, close_orphans: bool = True):
        """`close_orphans` False: the calls the media service kept are re-adopted first (readopt.py)."""
        self.db, self.calls, self.reactor, self._close = db, calls, reactor, close_orphans

    def startService(self) -> None:
        closed = self.calls.close_orphans("controller_restart", utc_from_clock(self.reactor)) if self._close else []
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


class DeskBoard:
    """The wallboard's LiveBoard: the desk's queue book and team read on the reactor thread (from
    an API thread), each wait in reactor seconds."""

    def __init__(self, desk: Desk, reactor: Any, from_thread: Callable[..., Any]):
        self._desk, self._reactor, self._from_thread = desk, reactor, from_thread

    def live(self, queues) -> LiveView:
        return self._from_thread(self._read, tuple(queues))

    def _read(self, queues) -> LiveView:
        now, book = self._reactor.seconds(), self._desk.queues
        waiting = tuple(WaitingNow(w.practice, w.queue, w.line, max(0.0, now - w.enqueued_at),
                                   isinstance(w.session, TaskSession)) for w in book.waiting())
        covering = {(p, q): tuple(s.id for s in book.covering(p, q, line)) for p, q, line in queues}
        return LiveView(waiting, covering, tuple(self._desk.views()))


def metrics_site(metrics: Metrics) -> Site:
    from prometheus_client.twisted import MetricsResource

    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry=metrics.registry))
    return Site(root)


def media_service(settings: Settings, reactor: Any) -> MediaService:
    """The media service (`callrouter media`): the worker processes, reached on var_dir/media.sock."""
    return MediaService(settings.media, socket_path(settings.var_dir), reactor)


def edge_service(settings: Settings, reactor: Any) -> KamailioService | None:
    """The SIP edge (`callrouter edge`): Kamailio configured from the settings (None: sip disabled)."""
    if not settings.sip.enabled:
        return None
    return KamailioService(settings.edge, realm=settings.auth.sip_realm, database_url=settings.database_url,
                           config_dir=settings.var_dir / "kamailio", reactor=reactor)


def build(settings: Settings, reactor: Any, whole: bool = True) -> tuple[MultiService, dict[str, Any]]:
    """The whole service tree, and its main parts by name (for tests and signal handlers).

    `whole`: the media service and the edge run in this tree too (`callrouter serve`); else they
    are services of their own (`callrouter media`, `callrouter edge`) that outlive this controller
    (`callrouter controller`), which leaves the workers and their calls running when it stops. Either
    way the controller reaches the workers through the media service's socket."""
    def on_thread(f: Callable, *args: Any):  # from the reactor: run f on its thread pool
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), f, *args)

    def from_thread(f: Callable, *args: Any) -> Any:  # from the API's threads: run f on the reactor
        return threads.blockingCallFromThread(reactor, f, *args)

    # The store, the metrics, the prompts, the events: used by everything below.
    db = Database.from_url(settings.database_url)
    calls, tasks = CallRepository(db, node=settings.node), TaskRepository(db, node=settings.node)
    # The keys outside the database (created at first start): the audit chain's anchor, the seal of
    # the users' TOTP secrets (those still in clear sealed now).
    totp_box = open_keys(db, settings.secrets_key_path, settings.audit_key_path, SYSTEM, utc_from_clock(reactor))
    audit = AuditLog(db)
    users = UserRepository(db, settings.auth.totp_issuer, settings.auth.sip_realm, totp_box=totp_box)
    recorder = CallRecorder(calls, spill=Spill(settings.var_dir / "call-records.spill", {"tasks": tasks}))
    metrics = Metrics(clock=reactor.seconds)
    catalogue = Catalogue.load(settings.prompts)

    def prompt_path(name: str, practice: str | None) -> str:
        return str(catalogue.wav_path(name, practice))

    # Every event goes to MQTT and to the console's event streams: one source, two transports.
    console_hub = EventHub()
    # The service level is counted from the same events; its thresholds are the dialplans' (the
    # registry, built below, is read when a call is queued).
    service_level = service_level_sink(metrics, reactor, lambda practice: registry.dialplans.get(practice))
    events_service, events = build_events(settings.mqtt, settings.node, metrics.registry, reactor,
                                          also=(console_hub, service_level))
    # Every stored change of a callback task, by the API or the calls, is announced: consoles refresh their lists.
    tasks = AnnouncedTasks(tasks, lambda view: reactor.callFromThread(events.task_changed, view))
    # So is every stored change of an escalation chain: wallboards follow the steps.
    def escalation_changed(escalation_id: int, practice: str) -> None:
        reactor.callFromThread(events.escalation_changed, escalation_id, practice)

    escalation_repo = EscalationRepository(db, settings.node, on_change=escalation_changed)
    # Several nodes on one PostgreSQL: a lease per node, the escalation engine on the leading node, its
    # writes fenced by the lead (docs/operations.md, "Several nodes"). SQLite: one node, always leading.
    cluster = build_cluster(settings.cluster, settings.node, lease_store(db), reactor, on_thread, metrics.registry)
    escalation_lead = cluster.lead(ESCALATION, lambda fence: escalation_repo if cluster.single else LeaderChains(
        db, fence, settings.node, escalation_changed, settings.cluster.lease_seconds))

    # The dialplans; on-call rotas published at a URL are fetched into var/ical/, which the registry watches.
    registry = DialplanRegistry([settings.dialplans], lambda: Catalogue.load(settings.prompts),
                                lambda: utc_from_clock(reactor), feed_cache=settings.var_dir / "ical")

    def dialplan_of(practice: str):  # the registry's current dialplans: a reload replaces them
        return registry.dialplans.get(practice)

    dialplans = DialplanService(registry, settings.dialplan_poll_seconds, metrics, events)

    # The media plane: the pool reports to the leg router, which hands each leg's events to its owner.
    controller_settings = settings.served_controller
    legs = LegRouter()
    # It grows and shrinks with the load, keeping the edge's dispatcher in step.
    edge_dispatch = (EdgeDispatcher(RegistrationsClient(settings.sip.rpc_port), settings.edge, reactor)
                     if settings.sip.enabled else None)
    media = media_service(settings, reactor) if whole else None
    pool = MediaPool(settings.media, legs, reactor, edge=edge_dispatch,
                     callers_per_worker=settings.sip.worker_max_calls if settings.sip.enabled else 0,
                     link=WorkerLink(socket_path(settings.var_dir), reactor), keep_workers=not whole)
    # The forwarding watch calls the practices' lines through the pool; the call controller hands
    # it every new call first, and a watch call coming back is released there (never a call).
    # Several nodes: the node leading the watch places its calls (its claims fenced by that lead).
    watch_lead = cluster.lead(WATCH_LEAD, lambda fence: None if cluster.single else FencedDatabase(
        db, fence, settings.cluster.lease_seconds))
    watch_store = WatchRepository(db, settings.node, claims=watch_lead.chains,
                                  on_change=lambda run: reactor.callFromThread(events.watch_changed, run))
    forwarding_watch = build_watch(settings.watch, settings.escalation, controller_settings.outbound_trunk, watch_store,
                                   pool, legs, lambda: registry.dialplans, reactor, on_thread, metrics, pool.when_ready,
                                   lead=watch_lead, shared=not cluster.single)
    # The team (coverage, levels, pause reasons) lives in the database: the settings only seed it
    # once; the secretaries' state changes are written there off the reactor.
    team_repo = TeamRepository(db)
    history = StateHistory(team_repo.append_states, on_thread, reactor)
    desk = Desk(controller_settings, reactor, metrics, events, history=history.add)  # logins, pauses saved in var/
    team = TeamService(team_repo, desk, seed_team(controller_settings.secretaries, controller_settings.levels,
                                                  settings.http.console.pause_reasons), reactor, on_thread)
    # Call recording and voicemail (docs/recording.md): the consent message, the conversations the
    # workers record sealed into the media vault, the voicemail messages sealed as they are left.
    recording = build_recording(settings.recording, settings.var_dir, controller_settings.voicemail_dir, db, reactor,
                                pool, legs, prompt_path, recorder.submit, on_thread, lambda: registry.dialplans,
                                settings.escalation, controller_settings.console_url,
                                lambda task_id: reactor.callFromThread(events.task_changed, tasks.get(task_id)))
    # The calls. The one edge of the graph read later than it is built: calls start escalation
    # chains, whose alert calls (below) ask the calls about the patient; the engine is looked up
    # when a call escalates, long after start.
    controller = CallController(reactor, pool, recorder, lambda: registry.router, prompt_path,
                                controller_settings, desk, legs, metrics, events=events,
                                escalate=(lambda session, tier: escalation.engine.escalate(session, tier))
                                if settings.escalation.enabled else None,
                                tasks=tasks, returns=forwarding_watch.calls.returning, recordings=recording.hooks)
    # Alert calls (the escalation's `call` steps) dial through the pool and ask the controller
    # about the patient's call; the voice channel places them (None: SMS instead).
    esc = settings.escalation
    alerts = AlertCalls(reactor, pool, prompt_path,
                        AlertSettings(controller_settings.outbound_trunk, ring_timeout_s=esc.call_ring_timeout_seconds,
                                      digit_timeout_s=esc.call_digit_timeout_seconds, repeats=esc.call_repeats),
                        controller, legs)
    voice = build_voice(esc, escalation_repo, alerts, settings.var_dir, catalogue, reactor)
    # A controller started apart from the media service takes back the calls its workers kept.
    readoption = None if whole else Readoption(
        controller, legs, lambda: on_thread(calls.open_calls),
        lambda kept: on_thread(calls.close_orphans, RESTARTED, utc_from_clock(reactor), kept),
        lambda: registry.router, reactor, expected=lambda: pool.taken_over)
    escalation = build_escalation(esc, escalation_repo, dialplan_of,
                                  reactor, metrics.registry, voice=voice, events=events, lead=escalation_lead)
    reaper = build_reaper(cluster, db, settings.node, settings.cluster, lambda: controller.ctx.settings.callback_expiry_s,
                          lambda: utc_from_clock(reactor), metrics.registry, controller.callbacks.restore, events)

    # The SIP edge, and who is registered at it.
    edge = edge_service(settings, reactor) if whole and settings.sip.enabled else None
    registrations = RegistrationsPoller(registrations_source(settings.sip, db.engine), desk, reactor) \
        if settings.sip.enabled else None

    # The admin API.
    def card_of(practice: str) -> dict | None:
        dialplan = dialplan_of(practice)
        return practice_card(dialplan) if dialplan is not None else None

    escalation_api = (EscalationApi(audit, escalation.repo, escalation.acknowledger, esc.inbound_sms_secret,
                                    escalation.start_from_thread, dialplan_of, calls)
                      if esc.enabled else None)
    task_api = TaskApi(audit, tasks, users=users, calls=calls,
                       default_expiry=lambda: dt.timedelta(seconds=controller.ctx.settings.callback_expiry_s),
                       known_practice=lambda practice: practice in registry.dialplans,
                       call_now=lambda view, who: from_thread(controller.callbacks.call_now, view, who))
    api = Api(users, calls, audit, registry, dt.timedelta(minutes=settings.auth.token_ttl_minutes), escalation_api,
              card_of, SecretaryApi(audit, desk, from_thread), task_api, controller.transfers)
    console = ConsoleApi(users, ConsoleSessions(ConsoleSessionRepository(db), users,
                                                dt.timedelta(minutes=settings.http.console.inactivity_minutes),
                                                secure_cookie=settings.http.console.cookie_secure or settings.http.tls),
                         settings.http.console, api.token_ttl,  # one Live, as the reload leaves it
                         pause_reasons=team_repo.pause_reasons)
    team_api = TeamApi(team_repo, users, lambda: registry.dialplans, lambda t: from_thread(desk.apply_team, t),
                       controller_settings.secretary_domain)
    kpi_records = KpiQueries(db)
    wallboard = WallboardApi(lambda: registry.dialplans, DeskBoard(desk, reactor, from_thread), kpi_records,
                             escalation_repo if esc.enabled else None,
                             lambda: {u.username: u.display_name for u in users.list()})
    # The practices' reports: on the API, and each week by e-mail through the escalation's SMTP relay.
    reports_api = ReportsApi(audit, kpi_records, dialplan_of)
    weekly_reports = WeeklyReports(lambda: registry.dialplans, ReportOutbox(db, settings.node), kpi_records,
                                   report_mailer := SmtpReportMailer(esc, settings.var_dir / "reports" / "outbox"),
                                   lambda report: render(report, "pdf").body, on_thread, reactor)
    watch_api = WatchApi(watch_store, lambda: registry.dialplans,
                         lambda practice, number, by: from_thread(forwarding_watch.service.run_now, practice, number, by),
                         lambda: from_thread(forwarding_watch.service.under_way), forwarding_watch.service.cap,
                         settings.watch.enabled)
    purger = RetentionPurger(db, settings.retention, media=[recording.retention])
    purge = PurgeService(purger, reactor, settings.retention.purge_interval_hours * 3600.0, on_thread)

    metrics_http = TCPServer(settings.metrics.port, metrics_site(metrics), interface=settings.metrics.host)
    metrics_http.setName("metrics-http")
    # Started in this order, stopped in reverse. Escalation after the dialplans (resumed chains
    # need them), before the calls that start chains; events stop after the pool and the edge, so
    # the last "ended" messages go out.
    children: list[IService | None] = [
        StoreService(db, calls, reactor, close_orphans=whole), cluster.service, RecorderService(recorder), history, metrics_http,
        events_service,
        dialplans, RotaFeedService(lambda: registry.dialplans, settings.var_dir / "ical", reactor),
        team, build_shared_desk(settings.cluster, cluster, db, desk, controller.line, reactor, on_thread),  # team first
        escalation.service if esc.enabled else None,  # the engine, started on the node leading it
        media, pool, PoolMetrics(pool, metrics, recorder), CallbackTasksService(tasks, controller, registry, reactor),
        reaper, CallCountsService(db, controller), recording.service,  # reaper: a lost node's calls (operations.md)
        edge, registrations,
        forwarding_watch.lead, forwarding_watch.service,  # its calls need the media plane, their return the edge
        *observers(settings, metrics, lambda: registry.dialplans, desk.queues, pool, db.engine,
                   edge or (SimpleNamespace(pid=None) if settings.sip.enabled else None), reactor),  # apart: RPC probed
        weekly_reports,
        admin_http := admin_service(settings.http, api, reactor, purge, console=console, hub=console_hub,
                      oncall=OnCallApi(dialplan_of, tier_label), team=team_api, wallboard=wallboard,
                      reports=reports_api, watch=watch_api, recordings=recording.api(calls, from_thread),
                      phone=PhoneApi(users, settings.auth.sip_realm, settings.sip.wss_port if settings.sip.enabled else 0)),
    ]
    top = MultiService()
    for child in children:
        if child is not None:
            child.setServiceParent(top)
    parts = {"db": db, "calls": calls, "recorder": recorder, "registry": registry, "dialplans": dialplans,
             "controller": controller, "desk": desk, "pool": pool, "metrics": metrics, "escalation": escalation.engine,
             "cluster": cluster, "recording": recording, "alerts": alerts, "purger": purger, "audit": audit, "api": api,
             "watch": forwarding_watch.service, "watch_calls": forwarding_watch.calls, "readoption": readoption,
             "watch_senders": forwarding_watch.senders, "report_mailer": report_mailer, "purge": purge, "admin_http": admin_http}
    return top, parts
