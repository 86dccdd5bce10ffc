"""Who is on call now and whom each tier would reach (callrouter.web.oncall): names from the
practice's rota, resolved as the escalation engine resolves them, at the time given, never a phone
number; and a secretary only ever sees the practices she covers (on-call, tasks, calls, card)."""

import datetime as dt
import json
import re

import pytest
import pytest_twisted
from twisted.internet import reactor

from callrouter.events.card import tier_label
from callrouter.store.tasks import TaskRepository
from callrouter.web.api import Api
from callrouter.web.oncall import OnCallApi, describe, skip_label
from callrouter.web.router import Router
from callrouter.web.service import served_routes
from callrouter.web.site import build_site
from callrouter.web.tasks import TaskApi
from tests.factories import examples
from web_support import MAX_BODY, Client, now, practice_cards

PARIS_FRIDAY_10 = dt.datetime(2027, 2, 5, 9, 0, tzinfo=dt.timezone.utc)  # 10:00 in Paris
PHONE = re.compile(r"\+?\d[\d .]{7,}\d")


@pytest.fixture(scope="module")
def martin():
    return examples()["cabinet-dr-martin"]


def test_the_practitioner_on_call_now_with_when_someone_else_takes_over(martin):
    got = describe(martin, PARIS_FRIDAY_10, tier_label)
    assert got["rota"] is True
    on_call = got["on_call"]
    assert (on_call["id"], on_call["name"], on_call["rule"]) == ("dr-martin", "Dr Claire Martin", "weekly")
    assert on_call["rule_label"] == "planning hebdomadaire"
    assert on_call["until"] == "2027-02-05T19:00+01:00"  # Friday night is Dr Roux's
    assert got["backup"]["name"] == "Dr Paul Roux"


def test_each_tier_names_whom_its_steps_reach_now_in_french(martin):
    tiers = {t["tier"]: t for t in describe(martin, PARIS_FRIDAY_10, tier_label)["tiers"]}
    assert tiers["vital"]["label"] == "Urgence vitale" and tiers["vital"]["announce"] is True
    assert tiers["vital"]["names"] == ["Dr Claire Martin"]
    urgent = tiers["urgent"]
    assert urgent["label"] == "Urgent" and urgent["names"] == ["Dr Claire Martin", "Dr Paul Roux"]
    assert [(s["channel_label"], s["target_label"], s["name"]) for s in urgent["steps"]] == [
        ("SMS", "Médecin de garde", "Dr Claire Martin"), ("Appel", "Médecin de garde", "Dr Claire Martin"),
        ("Appel", "Remplaçant", "Dr Paul Roux")]
    assert all(s["reachable"] and s["note"] is None for s in urgent["steps"])


def test_a_rota_that_has_ended_reaches_nobody_on_call_but_still_the_backup(martin):
    later = dt.datetime(2027, 9, 6, 8, 0, tzinfo=dt.timezone.utc)
    got = describe(martin, later, tier_label)
    assert got["on_call"]["name"] is None and got["on_call"]["rule"] == "ended"
    urgent = next(t for t in got["tiers"] if t["tier"] == "urgent")
    assert [s["reachable"] for s in urgent["steps"]] == [False, False, True]
    assert urgent["steps"][0]["note"] == "personne de garde à cette heure"
    assert urgent["names"] == ["Dr Paul Roux"]


def test_no_phone_number_nor_email_ever_leaves_for_any_example_practice():
    for plan in examples().values():
        for hour in range(0, 24, 3):
            text = json.dumps(describe(plan, PARIS_FRIDAY_10 + dt.timedelta(hours=hour), tier_label),
                              ensure_ascii=False)
            assert not PHONE.search(text.replace(":", " ")), plan.practice
            assert "@" not in text, plan.practice


@pytest.mark.parametrize("reason, label", [
    ("no on-call rota", "pas de planning de garde"), ("no backup declared", "aucun remplaçant déclaré"),
    ("practitioner dr-x has no phone", "pas de numéro de portable renseigné"),
    ("practitioner dr-x has no email", "pas d'adresse e-mail renseignée"),
    ("declined by dr-x", "a décliné"), ("unknown practitioner dr-x", "praticien inconnu du cabinet"),
])
def test_why_a_step_would_be_skipped_in_french(reason, label):
    assert skip_label(reason) == label


# --- the practice scope, over real HTTP ---------------------------------------------------------

@pytest.fixture
def scoped(env):
    """The API with tasks and on-call: cab-a is the Paris GP's dialplan, cab-b the Moselle group's."""
    plans = examples()
    sources = {"cab-a": plans["cabinet-dr-martin"], "cab-b": plans["msp-val-de-moselle"]}
    a = env.api
    tasks = TaskApi(env.audit, TaskRepository(env.db), known_practice=lambda p: p in sources)
    api = Api(a.users, a.calls, a.audit, a.dialplans, a.token_ttl, practice_cards=practice_cards, tasks=tasks)
    router = Router(served_routes(api, None, oncall=OnCallApi(sources.get, tier_label)), a.users.authenticate)
    port = reactor.listenTCP(0, build_site(router, reactor, reactor.getThreadPool(), reactor, MAX_BODY),
                             interface="127.0.0.1")
    try:
        yield Client(port.getHost().port)
    finally:
        pytest_twisted.blockon(port.stopListening())


@pytest_twisted.inlineCallbacks
def test_a_secretary_sees_her_practices_on_call_and_nothing_of_another_practice(env, scoped):
    sec = env.tokens["sec"]  # covers cab-a only
    mine = yield scoped.call("GET", "/api/practices/cab-a/on-call", token=sec)
    assert mine.status == 200 and mine.json()["practice_name"] == "Cabinet du Dr Claire Martin"
    midnight = now().replace(hour=0, minute=0, second=0, microsecond=0).isoformat().replace("+00:00", "Z")
    refused = {
        "on-call": (yield scoped.call("GET", "/api/practices/cab-b/on-call", token=sec)),
        "card": (yield scoped.call("GET", "/api/practices/cab-b/card", token=sec)),
        "tasks": (yield scoped.call("GET", "/api/practices/cab-b/tasks", token=sec)),
        "new task": (yield scoped.call("POST", "/api/practices/cab-b/tasks", {"number": "0612345678"}, token=sec)),
        "calls": (yield scoped.call("GET", f"/api/calls?practice=cab-b&since={midnight}", token=sec)),
    }
    assert {what: r.status for what, r in refused.items()} == {
        "on-call": 404, "card": 404, "tasks": 403, "new task": 403, "calls": 403}
    assert "Moselle" not in b"".join(r.body for r in refused.values()).decode()
    unknown = yield scoped.call("GET", "/api/practices/nowhere/on-call", token=env.tokens["super"])
    assert unknown.status == 404
    everyone = yield scoped.call("GET", "/api/practices/cab-b/on-call", token=env.tokens["super"])
    assert everyone.status == 200  # a supervisor is not limited to practices


@pytest_twisted.inlineCallbacks
def test_the_on_call_route_answers_503_on_a_server_without_dialplans(env):
    router = Router(served_routes(env.api, None), env.api.users.authenticate)
    port = reactor.listenTCP(0, build_site(router, reactor, reactor.getThreadPool(), reactor, MAX_BODY),
                             interface="127.0.0.1")
    try:
        r = yield Client(port.getHost().port).call("GET", "/api/practices/cab-a/on-call", token=env.tokens["sec"])
        assert r.status == 503
    finally:
        yield port.stopListening()
