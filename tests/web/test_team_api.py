"""The team API over real HTTP, on SQLite and PostgreSQL: what a supervisor reads and changes,
applied to the real call controller's dispatch before the answer (media faked), audited; every key,
level and reason checked with a French refusal that changes nothing; only supervisors and
administrators may touch it; the state history with who made each change."""

import dataclasses
import datetime as dt
import json

import pytest
import pytest_twisted
from twisted.internet import reactor, threads

from callrouter.config import ConsoleSettings
from callrouter.controller.history import StateHistory
from callrouter.domain.team import seed_team
from callrouter.media import protocol as p
from callrouter.store.audit import SYSTEM
from callrouter.store.team import TeamRepository
from callrouter.store.users import UserRepository
from callrouter.web.api import Api
from callrouter.web.console import ConsoleApi
from callrouter.web.http import ApiError, HttpRequest
from callrouter.web.router import Context, Router
from callrouter.web.secretaries import SecretaryApi
from callrouter.web.site import build_site
from callrouter.web.team import TeamApi, team_routes
from tests.controller.conftest import make_harness
from tests.controller.test_calls import queued_call
from tests.factories import examples
from web_support import MAX_BODY, Client

EDGE = "edge:5060"
PHONE = "sip:accueil@192.0.2.10"
PHONE_PATH = "sip%3Aaccueil%40192.0.2.10"


def practices():
    """Two practices of the examples as cab-a and cab-b (the people's practices), their general
    queues sharing the line "nord"."""
    plans = examples()
    out = []
    for practice, source in (("cab-a", "cabinet-dr-martin"), ("cab-b", "msp-val-de-moselle")):
        d = plans[source]
        queues = {**d.queues, "general": dataclasses.replace(d.queues["general"], shared="nord")}
        out.append(dataclasses.replace(d, practice=practice, queues=queues))
    return out


@pytest.fixture
def team(env, tmp_path):
    """The API of `env` with the team routes, on a call controller whose team was seeded with
    `sec` covering everything and a fixed phone; sec and extsec's softphones are registered."""
    plans = practices()
    h, ctx = make_harness(tmp_path / "controller", secretaries={"*": ("sec", PHONE)}, secretary_domain=EDGE,
                          dialplans=plans)
    repo = TeamRepository(env.db)
    writer = StateHistory(repo.append_states, threads.deferToThread, reactor)
    h.desk._history = writer.add  # the desk's history sink, as the service tree gives it
    h.desk.apply_team(repo.seed(seed_team({"*": ("sec", PHONE)}, {}, ("pause", "déjeuner", "réunion")), SYSTEM,
                                dt.datetime.now(dt.timezone.utc)))
    h.desk.registrations_changed(frozenset({"sec", "extsec"}))
    in_reactor = lambda f, *args: threads.blockingCallFromThread(reactor, f, *args)  # noqa: E731
    a = env.api
    team_api = TeamApi(repo, a.users, lambda: {d.practice: d for d in plans},
                       lambda t: in_reactor(h.desk.apply_team, t), EDGE)
    api = Api(a.users, a.calls, a.audit, a.dialplans, a.token_ttl,
              secretary_states=SecretaryApi(a.audit, h.desk, in_reactor))
    router = Router(api.routes() + team_routes(team_api), a.users.authenticate)
    port = reactor.listenTCP(0, build_site(router, reactor, reactor.getThreadPool(), reactor, MAX_BODY),
                             interface="127.0.0.1")
    try:
        yield h, Client(port.getHost().port), repo, writer
    finally:
        pytest_twisted.blockon(port.stopListening())
        h.recorder.stop()
        ctx.__exit__(None, None, None)


@pytest_twisted.inlineCallbacks
def test_a_supervisor_reads_the_team_and_what_its_keys_may_name(env, team):
    h, client, repo, _ = team
    r = yield client.call("GET", "/api/team", token=env.tokens["super"])
    assert r.status == 200
    body = r.json()
    assert body["version"] == 1 and body["pause_reasons"] == ["pause", "déjeuner", "réunion"]
    assert dt.datetime.fromisoformat(body["changed_at"]).tzinfo is not None
    assert [p["id"] for p in body["practices"]] == ["cab-a", "cab-b"]
    cab_a = body["practices"][0]
    assert cab_a["name"] == "Cabinet du Dr Claire Martin"
    assert {"id": "general", "label": "Secrétariat", "line": "line:nord"} in cab_a["queues"]
    assert {"id": "priority", "label": "Urgences du jour", "line": None} in cab_a["queues"]
    assert body["lines"] == ["line:nord"]
    assert body["secretaries"] == [
        {"id": "sec", "display_name": "Sec", "phone": f"sip:sec@{EDGE}", "coverage": ["*"], "levels": {},
         "practices": ["cab-a", "cab-b"]},
        {"id": PHONE, "display_name": None, "phone": PHONE, "coverage": ["*"], "levels": {},
         "practices": ["cab-a", "cab-b"]}]


@pytest_twisted.inlineCallbacks
def test_a_coverage_saved_is_applied_to_dispatch_before_the_answer_and_audited(env, team):
    h, client, repo, _ = team
    r = yield client.call("PUT", "/api/team/secretaries/extsec",
                          {"coverage": ["cab-a/general", "line:nord"], "levels": {"cab-a": 3}}, token=env.tokens["super"])
    assert r.status == 200, r.body
    assert r.json() == {"id": "extsec", "display_name": "Extsec", "phone": f"sip:extsec@{EDGE}",
                        "coverage": ["cab-a/general", "line:nord"], "levels": {"cab-a": 3},
                        "practices": ["cab-a", "cab-b"]}
    r = yield client.call("PUT", "/api/team/secretaries/sec", {"coverage": ["cab-b/*"], "levels": {}},
                          token=env.tokens["super"])
    assert r.status == 200 and r.json()["practices"] == ["cab-b"]
    r = yield client.call("PUT", f"/api/team/secretaries/{PHONE_PATH}", {"coverage": [], "levels": {}},
                          token=env.tokens["super"])
    assert r.status == 200 and r.json()["practices"] == []

    queued_call(h)  # cab-a's general queue: only extsec covers it now
    assert h.media.last(p.Dial).uri == f"sip:extsec@{EDGE}"
    assert h.desk.secretary("extsec").levels == {"cab-a": 3} and h.desk.team_version == 4
    assert env.users.get("sec").practices == ("cab-b",) and env.users.get("extsec").practices == ("cab-a", "cab-b")
    first, *_ = env.audit.query(action="team.secretary.set")[::-1]
    assert (first.actor, first.target, first.before) == ("super", "secretary:extsec", None)
    assert json.loads(first.after) == {"coverage": ["cab-a/general", "line:nord"], "levels": {"cab-a": 3}}
    assert [m.payload["version"] for m in h.published.on("/team")] == [1, 2, 3, 4]


@pytest_twisted.inlineCallbacks
def test_removing_a_secretary_stops_her_offers_and_her_scope(env, team):
    h, client, repo, _ = team
    r = yield client.call("DELETE", "/api/team/secretaries/sec", token=env.tokens["admin"])
    assert r.status == 200 and r.json() == {"removed": "sec"}
    assert not h.desk.known("sec") and env.users.get("sec").practices == ()
    r = yield client.call("DELETE", "/api/team/secretaries/sec", token=env.tokens["admin"])
    assert r.status == 404 and r.json()["message"] == "Aucune secrétaire « sec » dans l'équipe."
    [entry] = env.audit.query(action="team.secretary.remove")
    assert json.loads(entry.before) == {"coverage": ["*"], "levels": {}}


@pytest.mark.parametrize("who, body, message", [
    ("sec", {"coverage": ["cab-z/general"], "levels": {}}, "Le cabinet « cab-z » est inconnu."),
    ("sec", {"coverage": ["cab-a/nursing"], "levels": {}}, "La file « nursing » n'existe pas pour le cabinet « cab-a »."),
    ("sec", {"coverage": ["line:sud"], "levels": {}}, "La ligne partagée « sud » n'existe dans aucun plan d'appel."),
    ("sec", {"coverage": ["cab-a"], "levels": {}}, "La clé de couverture « cab-a » est mal formée"),
    ("sec", {"coverage": ["*"], "levels": {"cab-a": 11}}, "Le niveau pour « cab-a » doit être un entier de 1 à 10."),
    ("sec", {"coverage": ["*"], "levels": {"cab-q": 2}}, "Niveau donné pour le cabinet « cab-q », inconnu."),
    ("nobody", {"coverage": ["*"], "levels": {}}, "« nobody » n'est pas une secrétaire"),
    ("super", {"coverage": ["*"], "levels": {}}, "« super » n'est pas une secrétaire"),
    ("Bad Name", {"coverage": ["*"], "levels": {}}, "n'est ni un identifiant de secrétaire"),
])
@pytest_twisted.inlineCallbacks
def test_a_bad_key_level_or_secretary_is_refused_in_french_and_changes_nothing(env, team, who, body, message):
    h, client, repo, _ = team
    path = "/api/team/secretaries/" + who.replace(" ", "%20")
    r = yield client.call("PUT", path, body, token=env.tokens["super"])
    assert r.status == 422 and r.json()["error"] == "invalid_team", r.body
    assert message in r.json()["message"]
    assert repo.load().version == 1 and h.desk.team_version == 1
    assert env.audit.query(action="team.secretary.set") == []


@pytest_twisted.inlineCallbacks
def test_a_malformed_body_is_a_400(env, team):
    _, client, _, _ = team
    r = yield client.call("PUT", "/api/team/secretaries/sec", {"coverage": "*", "levels": []}, token=env.tokens["super"])
    assert r.status == 400 and len(r.json()["problems"]) == 2


@pytest_twisted.inlineCallbacks
def test_a_fixed_phone_may_join_and_a_pause_must_give_one_of_the_teams_reasons(env, team):
    h, client, repo, _ = team
    r = yield client.call("PUT", "/api/team/secretaries/sip%3Areception%40192.0.2.11", {"coverage": ["cab-b/*"],
                                                                                       "levels": {}},
                          token=env.tokens["super"])
    assert r.status == 200 and r.json()["display_name"] is None and h.desk.known("sip:reception@192.0.2.11")

    for bad, message in ((["pause", " Pause "], "« Pause » est donné deux fois"), ([], "Donnez de 1 à 20"),
                         (["x" * 41], "doit faire de 1 à 40 caractères")):
        r = yield client.call("PUT", "/api/team/pause-reasons", {"reasons": bad}, token=env.tokens["super"])
        assert r.status == 422 and message in r.json()["message"], r.body
    r = yield client.call("PUT", "/api/team/pause-reasons", {"reasons": ["  formation ", "réunion"]},
                          token=env.tokens["super"])
    assert r.status == 200 and r.json() == {"pause_reasons": ["formation", "réunion"]}

    r = yield client.call("POST", "/api/secretaries/me/pause", {"reason": "déjeuner"}, token=env.tokens["sec"])
    assert r.status == 422 and r.json()["reasons"] == ["formation", "réunion"]
    assert r.json()["message"] == "Motif de pause inconnu « déjeuner » : choisissez parmi « formation », « réunion »."
    r = yield client.call("POST", "/api/secretaries/sec/pause", {}, token=env.tokens["super"])
    assert r.status == 200 and r.json()["paused"] == "formation"  # none given: the first
    [entry] = env.audit.query(action="team.pause_reasons.set")
    assert json.loads(entry.after) == {"pause_reasons": ["formation", "réunion"]}
    assert json.loads(env.audit.query(action="secretary.pause")[0].details) == {"reason": "formation"}


@pytest_twisted.inlineCallbacks
def test_the_history_lists_state_changes_newest_first_with_who_made_them(env, team):
    h, client, repo, writer = team
    yield client.call("POST", "/api/secretaries/sec/pause", {"reason": "réunion"}, token=env.tokens["super"])
    yield client.call("POST", "/api/secretaries/me/resume", token=env.tokens["sec"])
    yield writer.flush()
    r = yield client.call("GET", "/api/secretaries/history?secretary=sec&limit=3", token=env.tokens["super"])
    assert r.status == 200
    changes = r.json()["changes"]
    assert [(c["state"], c["reason"], c["by"]) for c in changes] == [
        ("resumed", None, "sec"), ("paused", "réunion", "super"), ("registered", None, "system:registration")]
    assert all(c["secretary"] == "sec" and dt.datetime.fromisoformat(c["at"]).tzinfo for c in changes)
    r = yield client.call("GET", "/api/secretaries/history?since=2999-01-01T00:00:00%2B00:00", token=env.tokens["super"])
    assert r.json() == {"changes": []}
    r = yield client.call("GET", "/api/secretaries/history?since=yesterday", token=env.tokens["super"])
    assert r.status == 400


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/api/team", None),
    ("PUT", "/api/team/secretaries/sec", {"coverage": ["*"], "levels": {}}),
    ("DELETE", "/api/team/secretaries/sec", None),
    ("PUT", "/api/team/pause-reasons", {"reasons": ["pause"]}),
    ("GET", "/api/secretaries/history", None),
])
@pytest_twisted.inlineCallbacks
def test_secretaries_and_practitioners_may_not_touch_the_team(env, team, method, path, body):
    h, client, repo, _ = team
    for who in ("sec", "extsec", "doc"):
        r = yield client.call(method, path, body, token=env.tokens[who])
        assert r.status == 403, (who, r.body)
    r = yield client.call(method, path, body)
    assert r.status == 401
    assert repo.load().version == 1


def test_the_team_routes_answer_503_without_a_call_controller():
    request = HttpRequest("GET", "/api/team", {}, {}, b"", "127.0.0.1", dt.datetime.now(dt.timezone.utc))
    for route in team_routes(None):
        with pytest.raises(ApiError) as refused:
            route.handler(Context(request, {}, None, None))
        assert refused.value.status == 503


def test_the_consoles_pause_reasons_are_the_teams():
    console = ConsoleApi(None, None, ConsoleSettings(), dt.timedelta(hours=1), pause_reasons=lambda: ("réunion",))
    assert console._describe("sec", None)["pause_reasons"] == ["réunion"]
    plain = ConsoleApi(None, None, ConsoleSettings(pause_reasons=("pause",)), dt.timedelta(hours=1))
    assert plain._describe("sec", None)["pause_reasons"] == ["pause"]


@pytest.mark.parametrize("port, implementation", [
    ("callrouter.web.team:TeamStore", TeamRepository), ("callrouter.web.team:TeamUsers", UserRepository),
    ("callrouter.controller.team:TeamSource", TeamRepository),
])
def test_the_store_implements_the_team_ports_with_their_parameters(port, implementation):
    import importlib
    import inspect

    module, name = port.split(":")
    protocol = getattr(importlib.import_module(module), name)
    methods = [m for m, v in vars(protocol).items() if inspect.isfunction(v) and not m.startswith("_")]
    assert methods
    for method in methods:
        ours = [(p.name, p.kind, p.default) for p in inspect.signature(getattr(protocol, method)).parameters.values()]
        theirs = [(p.name, p.kind, p.default) for p in inspect.signature(getattr(implementation, method)).parameters.values()]
        assert ours == theirs, f"{implementation.__name__}.{method}"
