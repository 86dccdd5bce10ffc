"""The admin API as a Twisted service, for the application's service tree."""

from __future__ import annotations

from typing import Any

from twisted.application.internet import TCPServer
from twisted.application.service import IService, MultiService

from callrouter.web.api import Api
from callrouter.config import HttpSettings
from callrouter.web.site import build_site


def admin_service(http: HttpSettings, api: Api, reactor: Any, *beside: IService) -> MultiService:
    """The HTTP admin API serving `api` on `http`, with the services that run beside it (the
    retention purge), started after it in the order given.

    The reactor is also the clock; the handlers run in the reactor's thread pool (the store they
    call is blocking).
    """
    parent = MultiService()
    site = build_site(api.router(), reactor, reactor.getThreadPool(), reactor, http.max_body_bytes)
    server = TCPServer(http.port, site, interface=http.host)
    server.setName("admin-http")
    server.setServiceParent(parent)
    for service in beside:
        service.setServiceParent(parent)
    return parent
