"""The admin API and the secretaries' console as a Twisted service, for the application's service tree."""

from __future__ import annotations

import datetime as dt
from typing import Any

from twisted.application.internet import TCPServer, TimerService
from twisted.application.service import IService, MultiService
from twisted.internet import threads

from callrouter.config import HttpSettings
from callrouter.ports import utc_from_clock
from callrouter.web.api import Api
from callrouter.web.console import ConsoleApi
from callrouter.web.oncall import OnCallApi, oncall_routes
from callrouter.web.phone import PhoneApi, phone_routes
from callrouter.web.recordings import RecordingsApi, recording_routes
from callrouter.web.reports import ReportsApi, report_routes
from callrouter.web.router import Route, Router
from callrouter.web.site import ConsoleParts, build_site, follow_http
from callrouter.web.sse import EventHub
from callrouter.web.team import TeamApi, team_routes
from callrouter.web.tls import https_service
from callrouter.web.wallboard import WallboardApi, wallboard_routes
from callrouter.web.watch import WatchApi, watch_routes

SESSION_SWEEP_S = 60.0


class AdminService(MultiService):
    """The HTTP server and what runs beside it; `follow` takes the settings reload's HTTP settings
    (the socket's stay as they run: settings_diff names them for a restart)."""

    def __init__(self, site: Any, console: ConsoleApi | None) -> None:
        super().__init__()
        self.site, self._console = site, console

    def follow(self, http: HttpSettings) -> None:
        """The next request's body cap and HSTS max-age; the console sessions' inactivity limit
        (an open session's from its next request) and their cookie's Secure flag."""
        follow_http(self.site, http.max_body_bytes, http.hsts_max_age_s if http.tls else None)
        if self._console is not None:
            self._console.sessions.follow(dt.timedelta(minutes=http.console.inactivity_minutes),
                                          http.console.cookie_secure or http.tls)


def admin_service(http: HttpSettings, api: Api, reactor: Any, *beside: IService,
                  console: ConsoleApi | None = None, hub: EventHub | None = None,
                  oncall: OnCallApi | None = None, team: TeamApi | None = None,
                  wallboard: WallboardApi | None = None, reports: ReportsApi | None = None,
                  watch: WatchApi | None = None, recordings: RecordingsApi | None = None,
                  phone: PhoneApi | None = None) -> AdminService:
    """The HTTP server serving `api` on `http`, with the services that run beside it (the
    retention purge), started after it in the order given. With `console` (and the `hub` the event
    notifier feeds), it also serves the secretaries' console, and every minute closes the console
    sessions ended by inactivity (their tokens revoked).

    The reactor is also the clock; the handlers run in the reactor's thread pool (the store they
    call is blocking).
    """
    routes = served_routes(api, console, oncall=oncall, team=team, wallboard=wallboard, reports=reports, watch=watch,
                           recordings=recordings, phone=phone)
    # With the console, a bearer is a session's (the cookie's) or an API token's.
    authenticate = console.sessions.authenticate if console else api.users.authenticate
    parts = ConsoleParts(console.sessions, hub or EventHub(), authenticate) if console else None
    site = build_site(Router(routes, authenticate), reactor, reactor.getThreadPool(), reactor,
                      http.max_body_bytes, parts, hsts_max_age_s=http.hsts_max_age_s if http.tls else None,
                      connect_src=(f"wss://*:{phone.wss_port}",) if phone and phone.wss_port else ())
    parent = AdminService(site, console)
    if http.tls:  # HTTPS only (callrouter.web.tls), with Strict-Transport-Security
        server = https_service(http.port, http.host, site, http.tls_cert, http.tls_key)
    else:
        server = TCPServer(http.port, site, interface=http.host)
    server.setName("admin-http")
    server.setServiceParent(parent)
    if console is not None:
        TimerService(SESSION_SWEEP_S, _revoke_idle, console, reactor).setServiceParent(parent)
    for service in beside:
        service.setServiceParent(parent)
    return parent


def served_routes(api: Api, console: ConsoleApi | None, oncall: OnCallApi | None = None,
                  team: TeamApi | None = None, wallboard: WallboardApi | None = None,
                  reports: ReportsApi | None = None, watch: WatchApi | None = None,
                  recordings: RecordingsApi | None = None, phone: PhoneApi | None = None) -> list[Route]:
    """The route table the server answers from (docs/openapi.yaml is tested against it)."""
    return (api.routes() + (console.routes() if console else []) + oncall_routes(oncall) + team_routes(team)
            + wallboard_routes(wallboard) + report_routes(reports) + watch_routes(watch)
            + recording_routes(recordings) + phone_routes(phone))


def _revoke_idle(console: ConsoleApi, reactor: Any):
    """The sessions ended by inactivity closed, their tokens revoked (in the session store)."""
    return threads.deferToThreadPool(reactor, reactor.getThreadPool(), console.sessions.expired,
                                     utc_from_clock(reactor))
