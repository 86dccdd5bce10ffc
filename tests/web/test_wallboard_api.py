"""GET /api/wallboard over real HTTP, on SQLite and PostgreSQL: today's figures from call records
inserted by the real repository, the live queue book and team of a real desk read through the
application's LiveBoard (callrouter.app.DeskBoard), the calendars of real dialplans, the open
escalations; a secretary is refused."""

from __future__ import annotations

import datetime as dt

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.task import Clock

from callrouter.app import DeskBoard
from callrouter.controller.desk import Desk
from callrouter.controller.settings import ControllerSettings
from callrouter.dialplan.loader import load_paths
from callrouter.prompts import Catalogue
from callrouter.store.escalations import EscalationRepository
from callrouter.store.kpi_queries import KpiQueries
from callrouter.web.router import Router
from callrouter.web.site import build_site
from callrouter.web.wallboard import WallboardApi, wallboard_routes
from web_support import MAX_BODY, Client

PHONE = "sip:accueil@192.0.2.10"
ALWAYS = "{from: 2020-01-01, to: 2099-12-31, reason: permanence}"
DIALPLAN = """\
practice: {practice}
name: {name}
timezone: Europe/Paris
numbers: ["{number}"]
calendar:
  country: FR
  {kind}: [{always}]
hours:
  daily: ["00:00-24:00"]
queues:
  general: {{label: Secrétariat}}
  nord: {{label: Ligne nord, shared: nord}}
routes:
  open: {{queue: general}}
  closed: {{queue: general}}
practitioners:
  - {{id: dr-a, name: Dr Anne Arnaud, phone: "+33600000001"}}
"""


def dialplans(tmp_path):
    folder = tmp_path / "dialplans"
    folder.mkdir()
    for practice, name, number, kind in [("cab-a", "Cabinet A", "+33100000201", "openings"),
                                          ("cab-b", "Cabinet B", "+33100000202", "closures"),
                                          ("cab-c", "Cabinet C", "+33100000203", "openings")]:
        own = "kpis: {sl_threshold: 60s, sl_target: 90%}\n" if practice == "cab-c" else ""  # agreed with cab-c
        (folder / f"{practice}.yaml").write_text(DIALPLAN.format(practice=practice, name=name, number=number,
                                                                 kind=kind, always=ALWAYS) + own)
    result = load_paths([folder], Catalogue.load())
    assert not result.errors, result.errors
    return {d.practice: d for d in result.dialplans}


@pytest.fixture
def board(env, tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    clock = Clock()
    clock.advance(now.timestamp())
    desk = Desk(ControllerSettings(secretaries={"cab-a/*": ("sec", PHONE), "line:nord": ("extsec",),
                                                "cab-c/*": ("extsec",)},
                                   secretary_domain="edge:5060", login_required=True), clock)
    desk.registrations_changed(frozenset({"sec"}))
    desk.login("sec")
    desk.pause(PHONE, "poste fermé")
    from_thread = lambda f, *args: threads.blockingCallFromThread(reactor, f, *args)  # noqa: E731
    plans = dialplans(tmp_path)
    chains = EscalationRepository(env.db)
    api = WallboardApi(lambda: plans, DeskBoard(desk, clock, from_thread), KpiQueries(env.db), chains,
                       lambda: {u.username: u.display_name for u in env.users.list()})
    router = Router(wallboard_routes(api), env.users.authenticate)
    port = reactor.listenTCP(0, build_site(router, reactor, reactor.getThreadPool(), reactor, MAX_BODY),
                             interface="127.0.0.1")
    try:
        yield desk, clock, chains, now, Client(port.getHost().port)
    finally:
        pytest_twisted.blockon(port.stopListening())


def recorded(calls, call_id, practice, at, queued_s, answered_s, ended_s, outcome, queue="general"):
    calls.open_call(call_id, practice, "+33100000201", "+33612345678", at)
    calls.set_route(call_id, "open", "", at, "v1", ("open", "route 'open': queue general"))
    calls.queued(call_id, queue, at + dt.timedelta(seconds=queued_s))
    if answered_s is not None:
        calls.answered(call_id, "sip:sec@edge:5060", at + dt.timedelta(seconds=answered_s))
    if ended_s is not None:
        calls.close_call(call_id, outcome, at + dt.timedelta(seconds=ended_s))


@pytest_twisted.inlineCallbacks
def test_the_board_shows_waiting_calls_todays_figures_the_team_and_the_alarm(env, board):
    desk, clock, chains, now, client = board
    earlier = now - dt.timedelta(minutes=1)
    recorded(env.calls, "fast", "cab-a", earlier, 1, 9, 30, "answered")                 # within 30 s
    recorded(env.calls, "gave-up", "cab-a", earlier, 1, None, 40, "abandoned")
    recorded(env.calls, "short", "cab-a", earlier, 1, None, 3, "abandoned")             # out of the rates
    recorded(env.calls, "shared", "cab-c", earlier, 1, 50, 60, "answered", queue="nord")  # 49 s: late
    recorded(env.calls, "last-year", "cab-a", earlier - dt.timedelta(days=365), 1, 5, 9, "answered")
    desk.queues.enqueue(object(), "cab-a", "general", 0, clock.seconds() - 42)
    desk.queues.enqueue(object(), "cab-c", "nord", 0, clock.seconds() - 7, line="line:nord")
    exhausted = chains.create(None, "cab-a", "urgent", "+33612345678", now - dt.timedelta(minutes=20))
    chains.claim_step(exhausted.id, 0, 0, "sms", "dr-a", "+33600000001", now - dt.timedelta(minutes=20))
    chains.mark_sent(exhausted.id, 0, 0, "gw-1", now - dt.timedelta(minutes=20))
    chains.finish(exhausted.id, "exhausted", now - dt.timedelta(minutes=5))

    r = yield client.call("GET", "/api/wallboard", token=env.tokens["super"])
    assert r.status == 200, r.body
    b = r.json()
    practices = {p["id"]: p for p in b["practices"]}
    a, closed, c = practices["cab-a"], practices["cab-b"], practices["cab-c"]
    assert (a["open_now"], a["alarm"], a["waiting"], a["longest_wait_s"]) == (True, False, 1, 42.0)
    assert a["today"]["answered"] == 1 and a["today"]["abandoned"] == 1 and a["today"]["short_abandons"] == 1
    assert a["today"]["service_level"] == {"numerator": 1, "denominator": 2, "rate": 0.5, "target": 0.8,
                                           "threshold_s": 30.0}
    assert a["secretaries"] == {"covering": ["sec", PHONE, "extsec"], "logged_in": 2, "available": 1}  # extsec: the line
    general = next(q for q in a["queues"] if q["id"] == "general")
    assert (general["waiting"], general["today"]["answered"]) == (1, 1)
    # An open practice nobody covering it is logged in for is the alarm; a closed one is not.
    assert (c["open_now"], c["alarm"], c["secretaries"]["logged_in"]) == (True, True, 0)
    assert (closed["open_now"], closed["status"], closed["alarm"]) == (False, "closure", False)
    assert closed["today"]["service_level"]["rate"] is None  # no call: no rate, not 0 %
    [line] = b["lines"]
    assert (line["id"], line["waiting"], line["longest_wait_s"], line["practices"]) == (
        "line:nord", 1, 7.0, ["cab-a", "cab-b", "cab-c"])
    assert line["today"]["answered"] == 1 and line["today"]["service_level"]["numerator"] == 0
    assert line["secretaries"]["covering"] == ["extsec"]
    team = {m["id"]: m for m in b["team"]}
    assert (team["sec"]["state"], team["sec"]["display_name"], team["sec"]["registered"]) == ("available", "Sec", True)
    assert (team[PHONE]["state"], team[PHONE]["paused"], team[PHONE]["registered"]) == ("paused", "poste fermé", None)
    assert team["extsec"]["state"] == "offline"
    assert abs(dt.datetime.fromisoformat(team["sec"]["since"]) - now) < dt.timedelta(milliseconds=1)
    [chain] = b["escalations"]
    assert chain["needs_attention"] and chain["caller"] is None and chain["practice_name"] == "Cabinet A"
    assert chain["steps"][0]["practitioner_name"] == "Dr Anne Arnaud"


@pytest_twisted.inlineCallbacks
def test_a_practice_s_own_service_level_terms_count_on_its_tile_and_not_on_a_line_it_shares(env, board):
    desk, clock, chains, now, client = board
    earlier = now - dt.timedelta(minutes=1)
    recorded(env.calls, "c-general", "cab-c", earlier, 1, 50, 60, "answered")              # 49 s
    recorded(env.calls, "c-shared", "cab-c", earlier, 1, 50, 60, "answered", queue="nord")  # 49 s
    r = yield client.call("GET", "/api/wallboard", token=env.tokens["super"])
    b = r.json()
    c = next(p for p in b["practices"] if p["id"] == "cab-c")
    # cab-c agreed 60 s and 90 %: both calls are within its terms...
    assert c["today"]["service_level"] == {"numerator": 2, "denominator": 2, "rate": 1.0, "target": 0.9,
                                           "threshold_s": 60.0}
    # ...while the line cab-a and cab-b share with it keeps the default terms: 49 s is late there.
    [line] = b["lines"]
    assert line["today"]["service_level"] == {"numerator": 0, "denominator": 1, "rate": 0.0, "target": 0.8,
                                              "threshold_s": 30.0}


@pytest_twisted.inlineCallbacks
def test_time_in_state_starts_when_her_state_changes(env, board):
    desk, clock, _, now, client = board
    clock.advance(90)
    desk.pause("sec", "déjeuner")
    r = yield client.call("GET", "/api/wallboard", token=env.tokens["super"])
    sec = next(m for m in r.json()["team"] if m["id"] == "sec")
    assert (sec["state"], sec["paused"]) == ("paused", "déjeuner")
    assert abs(dt.datetime.fromisoformat(sec["since"]) - now - dt.timedelta(seconds=90)) < dt.timedelta(milliseconds=1)


@pytest_twisted.inlineCallbacks
def test_a_secretary_may_not_read_the_wallboard(env, board):
    *_, client = board
    r = yield client.call("GET", "/api/wallboard", token=env.tokens["sec"])
    assert r.status == 403 and "team:read" in r.json()["message"]
    r = yield client.call("GET", "/api/wallboard")
    assert r.status == 401
    r = yield client.call("GET", "/api/wallboard", token=env.tokens["admin"])
    assert r.status == 200


@pytest_twisted.inlineCallbacks
def test_no_controller_no_wallboard(env):
    router = Router(wallboard_routes(None), env.users.authenticate)
    port = reactor.listenTCP(0, build_site(router, reactor, reactor.getThreadPool(), reactor, MAX_BODY),
                             interface="127.0.0.1")
    try:
        r = yield Client(port.getHost().port).call("GET", "/api/wallboard", token=env.tokens["super"])
        assert r.status == 503
    finally:
        yield port.stopListening()
