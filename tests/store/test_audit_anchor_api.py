"""`GET /api/audit/verify` on a real HTTP server and `callrouter db verify-audit` report a full
rewrite of the audit chain made with database rights, every hash recomputed."""

import datetime as dt

import pytest_twisted
from twisted.internet import reactor

from callrouter.auth.totp import code_at
from callrouter.cli import main
from callrouter.store.audit import AuditLog
from callrouter.store.calls import CallRepository
from callrouter.store.keys import open_keys
from callrouter.store.users import UserRepository
from callrouter.web.api import Api
from callrouter.web.site import build_site
from tests.cli_support import hand_to_cli
from tests.store.test_audit_anchor import MALLORY, rewrite_whole_chain
from tests.web.web_support import MAX_BODY, PASSWORD, ROOT, Client, FakeDialplans

NOW = dt.datetime.now(dt.timezone.utc)


def as_someone_else(row):
    return {**row, "actor": "root", "source": "cli"} if row["actor"] == "mallory" else row


@pytest_twisted.inlineCallbacks
def test_the_api_and_the_cli_report_a_rewritten_chain(db, tmp_path, monkeypatch, capsys):
    var = tmp_path / "var"
    box = open_keys(db, var / "secrets.key", var / "audit.key", ROOT, NOW)  # as the service at start
    users, audit = UserRepository(db, totp_box=box), AuditLog(db)
    new = users.add(ROOT, "auditor", "Auditor", "administrator", PASSWORD, NOW)
    token, _ = users.login("auditor", PASSWORD, code_at(new.totp_secret, NOW), NOW, "127.0.0.1", dt.timedelta(hours=1))
    audit.record(MALLORY, "calls.export", "practice:cab-a", NOW, details={"records": 120})
    api = Api(users, CallRepository(db), audit, FakeDialplans(), dt.timedelta(hours=1))
    port = reactor.listenTCP(0, build_site(api.router(), reactor, reactor.getThreadPool(), reactor, MAX_BODY),
                             interface="127.0.0.1")
    client = Client(port.getHost().port)
    try:
        r = yield client.call("GET", "/api/audit/verify", token=token)
        assert r.status == 200 and r.json()["ok"] is True and r.json()["anchored"] is True
        rewrite_whole_chain(db, as_someone_else)  # the export now reads as root's
        r = yield client.call("GET", "/api/audit/verify", token=token)
        body = r.json()
        assert r.status == 200 and body["ok"] is False and body["anchored"] is True
        assert "rewritten in the database" in body["error"]
    finally:
        yield port.stopListening()
    hand_to_cli(monkeypatch, db, tmp_path)  # var/ holds the key files
    assert main(["db", "verify-audit"]) == 1
    assert "audit chain BROKEN: the chain's head does not match its anchor MAC" in capsys.readouterr().err
