"""The admin API and the retention job as Twisted services, for the application's service tree."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from twisted.application.internet import TCPServer
from twisted.application.service import MultiService
from twisted.internet import threads

from callrouter.config import Settings
from callrouter.ports import DialplanStatusSource
from callrouter.store.audit import AuditLog
from callrouter.store.calls import CallRepository
from callrouter.store.db import Database
from callrouter.store.retention import PurgeService, RetentionPurger
from callrouter.store.users import UserRepository
from callrouter.web.api import Api
from callrouter.web.escalations import EscalationApi
from callrouter.web.secretaries import SecretaryApi
from callrouter.web.site import build_site
from callrouter.web.tasks import TaskApi


def admin_service(settings: Settings, db: Database, dialplans: DialplanStatusSource,
                  reactor: Any, escalations: "EscalationApi | None" = None,
                  practice_cards: Any = None, controller: Any = None,
                  tasks: "TaskApi | None" = None) -> MultiService:
    """The HTTP admin API on settings.http, plus the scheduled retention purge.

    `escalations`: the escalation routes' handlers (ack link, SMS webhook, API); None: they answer 503.
    `controller`: the call controller whose secretaries log in and pause through the API.
    `tasks`: the callback task routes' handlers (with the controller's `on_created`); None: they answer 503.

    The reactor is also the clock; blocking store calls run in the reactor's thread pool.
    """
    pool = reactor.getThreadPool()
    api = Api(db, UserRepository(db, settings.auth.totp_issuer, settings.auth.sip_realm),
              CallRepository(db), AuditLog(db), dialplans,
              dt.timedelta(minutes=settings.auth.token_ttl_minutes), escalations, practice_cards)
    if controller is not None:  # the secretaries' live states (logins, pauses) are the controller's
        api.secretary_states = SecretaryApi(db, controller,
                                            lambda f, *a: threads.blockingCallFromThread(reactor, f, *a))
    if tasks is not None:  # assignees and linked calls are checked against this API's stores
        api.tasks = dataclasses.replace(tasks, users=tasks.users or api.users, calls=tasks.calls or api.calls)
    site = build_site(api.router(), reactor, pool, reactor, settings.http.max_body_bytes)
    parent = MultiService()
    http = TCPServer(settings.http.port, site, interface=settings.http.host)
    http.setName("admin-http")
    http.setServiceParent(parent)
    purge = PurgeService(RetentionPurger(db, settings.retention), reactor,
                         settings.retention.purge_interval_hours * 3600.0,
                         lambda f, *a: threads.deferToThreadPool(reactor, pool, f, *a))
    purge.setServiceParent(parent)
    return parent
