"""The team in the database (callrouter.store.team), on SQLite and the real PostgreSQL: seeded once,
each change one transaction bumping the version and audited with before and after, the user's
practices following her coverage, the state history appended and read newest first, and purged
after its retention."""

import datetime as dt
import json
import threading

import pytest

from callrouter.config import RetentionSettings
from callrouter.domain.team import StateChange, Team, UnknownMember, seed_team
from callrouter.store.audit import SYSTEM, Actor, AuditLog
from callrouter.store.retention import RetentionPurger
from callrouter.store.team import TeamRepository
from callrouter.store.users import UserRepository

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
SUPER = Actor("super", "127.0.0.1")
SEED = seed_team({"*": ("alice", "bob"), "cab-a/general": ("alice", "sip:accueil@192.0.2.10")},
                 {"alice": {"cab-a": 3, "*": 2}, "ghost": {"cab-a": 9}},
                 ("pause", "déjeuner", "réunion"))


def later(minutes: int) -> dt.datetime:
    return NOW + dt.timedelta(minutes=minutes)


def test_an_empty_team_is_seeded_once_audited_as_the_system(db):
    repo, audit = TeamRepository(db), AuditLog(db)
    assert repo.load() is None

    seeded = repo.seed(SEED, SYSTEM, NOW)
    again = repo.seed(seed_team({"*": ("carol",)}, {}, ("autre",)), SYSTEM, later(1))

    assert again is None  # the settings only seed: the second start reads the database
    loaded = repo.load()
    assert loaded == seeded
    assert loaded.version == 1 and loaded.changed_at == NOW
    assert loaded.secretaries == ("alice", "bob", "sip:accueil@192.0.2.10")
    assert dict(loaded.coverage) == {"*": ("alice", "bob"), "cab-a/general": ("alice", "sip:accueil@192.0.2.10")}
    assert dict(loaded.levels) == {"alice": {"*": 2, "cab-a": 3}}  # levels of nobody in a queue dropped
    assert loaded.pause_reasons == ("pause", "déjeuner", "réunion")
    [entry] = audit.query(action="team.seed")
    assert (entry.actor, entry.target) == ("system", "team")
    assert json.loads(entry.after)["secretaries"]["alice"] == {"coverage": ["*", "cab-a/general"],
                                                               "levels": {"*": 2, "cab-a": 3}}
    assert audit.verify().ok


def test_two_nodes_seeding_at_once_seed_one_team(db):
    repo = TeamRepository(db)
    results = []
    threads = [threading.Thread(target=lambda n=n: results.append(
        repo.seed(seed_team({"*": (f"s{n}",)}, {}, ("pause",)), SYSTEM, NOW))) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for r in results if r is not None) == 1
    assert len(repo.load().secretaries) == 1


def test_setting_a_secretary_replaces_her_coverage_and_levels_keeping_her_place(db):
    repo, audit = TeamRepository(db), AuditLog(db)
    repo.seed(SEED, SYSTEM, NOW)

    team = repo.set_secretary(SUPER, "bob", ["cab-a/general", "*"], {"cab-a": 5}, later(1))

    assert team.version == 2 and team.changed_at == later(1)
    assert team.coverage["*"] == ("alice", "bob")  # she kept her place in "*"
    assert team.coverage["cab-a/general"] == ("alice", "sip:accueil@192.0.2.10", "bob")  # new there: last
    assert team.levels_of("bob") == {"cab-a": 5}
    team = repo.set_secretary(SUPER, "alice", ["cab-a/general"], {}, later(2))
    assert team.coverage["*"] == ("bob",) and team.coverage["cab-a/general"][0] == "alice"
    assert team.levels_of("alice") == {} and team.version == 3
    assert repo.load() == team

    first, second = audit.query(action="team.secretary.set")[::-1]
    assert (first.actor, first.source, first.target) == ("super", "127.0.0.1", "secretary:bob")
    assert json.loads(first.before) == {"coverage": ["*"], "levels": {}}
    assert json.loads(first.after) == {"coverage": ["*", "cab-a/general"], "levels": {"cab-a": 5}}
    assert json.loads(second.before)["levels"] == {"*": 2, "cab-a": 3}


def test_a_new_secretary_is_created_and_can_be_removed(db):
    repo, audit = TeamRepository(db), AuditLog(db)
    repo.seed(SEED, SYSTEM, NOW)

    team = repo.set_secretary(SUPER, "carol", ["line:nord"], {"*": 4}, later(1))
    assert "carol" in team.secretaries and team.coverage["line:nord"] == ("carol",)
    [created] = audit.query(action="team.secretary.set")
    assert created.before is None

    team = repo.remove_secretary(SUPER, "carol", later(2))
    assert "carol" not in team.secretaries and "line:nord" not in team.coverage and "carol" not in team.levels
    assert team.version == 3
    [removed] = audit.query(action="team.secretary.remove")
    assert json.loads(removed.before) == {"coverage": ["line:nord"], "levels": {"*": 4}} and removed.after is None
    with pytest.raises(UnknownMember):
        repo.remove_secretary(SUPER, "carol", later(3))
    assert repo.load().version == 3  # a refused removal changes nothing


def test_a_member_may_cover_nothing_yet(db):
    repo = TeamRepository(db)
    team = repo.set_secretary(SUPER, "dora", [], {}, NOW)  # never seeded: the first change creates the version
    assert team.secretaries == ("dora",) and team.keys_of("dora") == () and team.version == 1


def test_her_user_practices_become_those_her_coverage_reaches(db):
    repo, users, audit = TeamRepository(db), UserRepository(db), AuditLog(db)
    users.add(SUPER, "alice", "Alice", "secretary", "a long enough password", NOW, practices=("cab-z",))
    repo.seed(SEED, SYSTEM, NOW)

    repo.set_secretary(SUPER, "alice", ["cab-a/general", "line:nord"], {}, later(1), practices=("cab-a", "cab-b"))
    assert users.get("alice").practices == ("cab-a", "cab-b")
    [entry] = audit.query(action="user.practices")
    assert json.loads(entry.before) == {"practices": ["cab-z"]} and json.loads(entry.after) == {
        "practices": ["cab-a", "cab-b"]}

    repo.set_secretary(SUPER, "alice", ["cab-a/general"], {"cab-a": 2}, later(2), practices=("cab-a",))
    assert users.get("alice").practices == ("cab-a",)
    repo.set_secretary(SUPER, "sip:accueil@192.0.2.10", ["*"], {}, later(3), practices=("cab-a", "cab-b"))  # no user
    repo.remove_secretary(SUPER, "alice", later(4))
    assert users.get("alice").practices == ()  # she left the team: no practice any more
    assert len(audit.query(action="user.practices")) == 3
    assert audit.verify().ok


def test_a_change_that_fails_leaves_nothing_behind(db):
    repo, audit = TeamRepository(db), AuditLog(db)
    repo.seed(SEED, SYSTEM, NOW)
    with pytest.raises(Exception):
        repo.set_pause_reasons(SUPER, ["pause", "pause"], later(1))  # the unique constraint refuses it
    assert repo.load().version == 1 and repo.pause_reasons() == ("pause", "déjeuner", "réunion")
    assert audit.query(action="team.pause_reasons.set") == []


def test_pause_reasons_are_replaced_in_their_order_and_audited(db):
    repo, audit = TeamRepository(db), AuditLog(db)
    repo.seed(SEED, SYSTEM, NOW)
    team = repo.set_pause_reasons(SUPER, ["réunion", "formation", "pause"], later(1))
    assert team.pause_reasons == repo.pause_reasons() == ("réunion", "formation", "pause")
    assert team.version == 2
    [entry] = audit.query(action="team.pause_reasons.set")
    assert json.loads(entry.before) == {"pause_reasons": ["pause", "déjeuner", "réunion"]}
    assert json.loads(entry.after) == {"pause_reasons": ["réunion", "formation", "pause"]}


def test_state_history_is_read_newest_first_by_secretary_since_and_limit(db):
    repo = TeamRepository(db)
    repo.append_states([StateChange(later(0), "alice", "logged_in", None, "alice"),
                        StateChange(later(1), "bob", "registered", None, "system:registration"),
                        StateChange(later(2), "alice", "paused", "déjeuner " * 20, "super")])
    repo.append_states([StateChange(later(2), "alice", "resumed", None, "alice")])  # same second: by order of writing

    assert [(c.secretary, c.state) for c in repo.history()] == [
        ("alice", "resumed"), ("alice", "paused"), ("bob", "registered"), ("alice", "logged_in")]
    assert [c.state for c in repo.history(secretary="alice", since=later(1))] == ["resumed", "paused"]
    assert [c.state for c in repo.history(limit=1)] == ["resumed"]
    paused = repo.history(secretary="alice")[1]
    assert paused.by == "super" and len(paused.reason) == 80 and paused.at == later(2)


def test_state_history_is_purged_after_its_retention(db):
    repo = TeamRepository(db)
    repo.append_states([StateChange(NOW - dt.timedelta(days=d), "alice", "logged_in", None, "alice")
                        for d in (500, 401, 399, 1)])
    result = RetentionPurger(db, RetentionSettings(state_history_days=400)).purge(SYSTEM, NOW)
    assert result.state_history == 2 and result.to_json()["state_history"] == 2
    assert sorted((NOW - c.at).days for c in repo.history()) == [1, 399]
    kept = RetentionPurger(db, RetentionSettings(state_history_days=None)).purge(SYSTEM, NOW)
    assert kept.state_history == 0 and len(repo.history()) == 2


def test_the_team_value_keeps_places_when_a_member_changes():
    """The pure Team value used by the desk and the API follows the store's placing rules."""
    team = Team(("a", "b"), {"*": ("a", "b"), "x/*": ("b",)}, {"a": {"*": 2}}, ("pause",))
    moved = team.with_member("a", ["x/*", "*"], {"x": 3})
    assert dict(moved.coverage) == {"*": ("a", "b"), "x/*": ("b", "a")} and moved.levels_of("a") == {"x": 3}
    assert dict(moved.without("b").coverage) == {"*": ("a",), "x/*": ("a",)}
    assert moved.without("b").secretaries == ("a",)
