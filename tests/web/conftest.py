"""A real admin API on a free loopback port, backed by a fresh SQLite or PostgreSQL database."""

import datetime as dt

import pytest
import pytest_twisted
from twisted.internet import reactor

from callrouter.auth.totp import code_at
from callrouter.store.audit import AuditLog
from callrouter.store.calls import CallRepository
from callrouter.store.testing import KINDS, fresh_database
from callrouter.store.users import UserRepository
from callrouter.web.api import Api
from callrouter.web.site import build_site
from web_support import MAX_BODY, PASSWORD, PEOPLE, ROOT, ApiEnv, Client, FakeDialplans, now, practice_cards


@pytest.fixture(params=KINDS)
def env(request, tmp_path):
    with fresh_database(request.param, tmp_path) as db:
        users = UserRepository(db)
        calls = CallRepository(db)
        audit = AuditLog(db)
        dialplans = FakeDialplans()
        tokens = {}
        t = now()
        for name, (role, external, practices) in PEOPLE.items():
            new = users.add(ROOT, name, name.title(), role, PASSWORD, t, external=external,
                            practices=practices)
            tokens[name], _ = users.login(name, PASSWORD, code_at(new.totp_secret, t), t,
                                          "127.0.0.1", dt.timedelta(hours=1))
        api = Api(users, calls, audit, dialplans, dt.timedelta(hours=1), practice_cards=practice_cards)
        site = build_site(api.router(), reactor, reactor.getThreadPool(), reactor, MAX_BODY)
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        try:
            yield ApiEnv(db, api, Client(port.getHost().port), tokens, dialplans, calls, users,
                         audit)
        finally:
            pytest_twisted.blockon(port.stopListening())


@pytest.fixture(params=KINDS)
def db_env(request, tmp_path):
    """Just a fresh database (for tests building their own services)."""
    with fresh_database(request.param, tmp_path) as db:
        yield db
