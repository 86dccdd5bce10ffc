"""The admin service starts the API on its configured address and runs the purge at start."""

import datetime as dt
import http.client
import json

import pytest_twisted
from twisted.internet import reactor, task, threads

from callrouter.config import HttpSettings, parse_settings
from callrouter.store.audit import AuditLog
from callrouter.store.calls import CallRepository
from callrouter.store.retention import PurgeService, RetentionPurger
from callrouter.store.users import UserRepository
from callrouter.web.api import Api
from callrouter.web.service import admin_service
from web_support import FakeDialplans


def _get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@pytest_twisted.inlineCallbacks
def test_admin_service_serves_the_api_and_purges(db_env):
    retention = parse_settings({}, environ={}).retention
    api = Api(UserRepository(db_env), CallRepository(db_env), AuditLog(db_env), FakeDialplans(), dt.timedelta(hours=1))
    purge = PurgeService(RetentionPurger(db_env, retention), reactor, retention.purge_interval_hours * 3600.0,
                         lambda f, *a: threads.deferToThreadPool(reactor, reactor.getThreadPool(), f, *a))
    service = admin_service(HttpSettings(host="127.0.0.1", port=0), api, reactor, purge)
    service.startService()
    try:
        port = service.getServiceNamed("admin-http")._port.getHost().port
        status, body = yield threads.deferToThread(_get, port, "/api/users")
        assert status == 401 and body["error"] == "unauthorized"
        purge = service.getServiceNamed("retention-purge")
        for _ in range(100):
            if purge.last_result is not None:
                break
            yield task.deferLater(reactor, 0.05, lambda: None)
        entries = yield threads.deferToThread(AuditLog(db_env).query)
        assert [e.action for e in entries] == ["retention.purge"]
    finally:
        yield service.stopService()
