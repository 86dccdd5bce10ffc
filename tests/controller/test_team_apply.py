"""The team applied live (QueueBook.reconfigure, Desk.apply_team): every secretary who stays keeps
her state, one removed on a call keeps it, waiting calls are offered under the new coverage at
once; pause reasons required once a team is applied; every state change handed to the history
with who made it. Media is faked (the commands a worker would get); records go to SQLite."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from callrouter.controller.queues import QueueBook
from callrouter.domain.team import BY_MISSED_OFFERS, BY_REGISTRATION, Team
from callrouter.media import protocol as p
from callrouter.ports import UnknownPauseReason, UnknownSecretary
from tests.controller.test_calls import busy_secretary, queued_call

EDGE = "edge:5060"
MARTIN = "cabinet-dr-martin"


def dialled(h):
    return [c.uri.split("@")[0].removeprefix("sip:") for c in h.media.commands(p.Dial)]


def team(coverage, levels=None, version=1, reasons=("pause", "déjeuner"), members=()):
    everyone = {m for entries in coverage.values() for m in entries} | set(members)
    return Team(tuple(sorted(everyone)), {k: tuple(v) for k, v in coverage.items()}, levels or {}, reasons, version)


@pytest.fixture
def desk_of(make):
    def build(**kw):
        h = make(secretary_domain=EDGE, **kw)
        h.history = []
        h.desk._history = h.history.append  # the desk's history sink, as StateHistory.add is in the daemon
        return h
    return build


def test_secretaries_who_stay_keep_their_login_pause_registration_and_answers(desk_of):
    h = desk_of(secretaries={"*": ("alice", "bob")}, login_required=True)
    h.desk.registrations_changed(frozenset({"alice", "bob"}))
    h.desk.login("alice")
    h.desk.login("bob")
    h.desk.pause("bob", "réunion")
    busy_secretary(h)  # alice on a call
    alice, bob = h.desk.secretary("alice"), h.desk.secretary("bob")

    assert h.desk.apply_team(team({f"{MARTIN}/*": ("alice",), "*": ("bob", "carol")}, {"alice": {MARTIN: 4}}))

    assert h.desk.secretary("alice") is alice and h.desk.secretary("bob") is bob
    assert (alice.logged_in, alice.registered, alice.activity, len(alice.answers)) == (True, True, "on_call", 1)
    assert (bob.paused, alice.levels, bob.levels) == ("réunion", {MARTIN: 4}, {})
    carol = h.desk.secretary("carol")
    assert not carol.logged_in and not carol.registered  # new: offline until she logs in and registers
    assert h.desk.team_version == 1


def test_a_secretary_removed_during_a_call_keeps_it_and_gets_no_new_one(desk_of):
    h = desk_of(secretaries={"*": ("alice", "bob")}, login_required=False)
    h.desk.registrations_changed(frozenset({"alice", "bob"}))
    sec_leg = busy_secretary(h)
    [first] = dialled(h)
    caller = next(leg for leg, s in h.controller.sessions.items() if s.secretary is not None)
    remaining = "bob" if first == "alice" else "alice"

    h.desk.apply_team(team({"*": (remaining,)}))

    assert not h.desk.known(first)
    session = h.controller.sessions[caller]
    assert session.secretary.username == first and session.state.value == "bridged"  # the call goes on
    queued_call(h)
    assert dialled(h) == [first, remaining]
    h.ended(sec_leg)  # she hangs up: the call ends as usual, and she shows offline
    rec = h.record(h.call_id(caller))
    assert rec.outcome == "answered" and rec.secretary == f"sip:{first}@{EDGE}"
    h.clock.advance(60)  # past her wrap-up
    last = h.published.on(f"/secretaries/{first}/state")[-1].payload
    assert (last["state"], last["reason"]) == ("offline", "removed from the team")
    queued_call(h)
    assert dialled(h)[-1] == remaining


def test_a_call_waiting_is_offered_at_once_to_a_secretary_the_new_team_adds(desk_of):
    h = desk_of(secretaries={"*": ("alice",)}, login_required=False)
    h.desk.registrations_changed(frozenset({"alice", "bob"}))
    busy_secretary(h)
    waiting = queued_call(h)
    assert h.controller.sessions[waiting].state.value == "queued"

    h.desk.apply_team(team({"*": ("alice",), f"{MARTIN}/general": ("bob",)}))

    assert h.controller.sessions[waiting].state.value == "ringing" and dialled(h) == ["alice", "bob"]


def test_the_next_call_follows_the_new_coverage(desk_of):
    h = desk_of(secretaries={f"{MARTIN}/*": ("alice",), "*": ("bob",)}, login_required=False)
    h.desk.registrations_changed(frozenset({"alice", "bob"}))
    h.desk.apply_team(team({f"{MARTIN}/*": ("bob",), "*": ("alice",)}, version=2))
    queued_call(h)
    assert dialled(h) == ["bob"]


def test_a_stale_team_is_ignored_and_a_bad_one_changes_nothing(desk_of):
    h = desk_of(secretaries={"*": ("alice",)})
    assert h.desk.apply_team(team({"*": ("bob",)}, version=5))
    assert not h.desk.apply_team(team({"*": ("alice",)}, version=4))  # an older one read late
    assert not h.desk.apply_team(team({"*": ("alice",)}, version=5))
    with pytest.raises(ValueError):
        h.desk.apply_team(team({"*": ("carol",)}, {"nobody": {"*": 2}}, version=6))
    assert [a.id for a in h.desk.queues.secretaries()] == ["bob"] and h.desk.team_version == 5


def test_someone_removed_then_added_again_comes_back_as_she_was(desk_of):
    h = desk_of(secretaries={"*": ("alice", "bob")}, login_required=True)
    h.desk.registrations_changed(frozenset({"alice"}))
    h.desk.login("alice")
    alice = h.desk.secretary("alice")
    h.desk.apply_team(team({"*": ("bob",)}, version=1))
    with pytest.raises(UnknownSecretary):
        h.desk.secretary("alice")
    h.desk.apply_team(team({"*": ("alice", "bob")}, version=2))
    assert h.desk.secretary("alice") is alice and alice.logged_in


def test_added_secretaries_get_their_saved_login_and_pause(make, tmp_path):
    import json

    state = tmp_path / "secretaries.json"
    state.write_text(json.dumps({"dora": {"logged_in": True, "paused": "formation", "auto_paused": False}}))
    h = make(secretaries={"*": ("alice",)}, secretary_domain=EDGE, login_required=True, state_file=state)
    h.desk.apply_team(team({"*": ("alice", "dora")}, reasons=("formation",)))
    dora = h.desk.secretary("dora")
    assert (dora.logged_in, dora.paused) == (True, "formation")
    assert set(json.loads(state.read_text())) == {"alice", "dora"}


def test_pause_reasons_are_the_teams_once_applied_and_the_automatic_pause_is_allowed(desk_of):
    h = desk_of(secretaries={"*": ("alice",)}, login_required=False, max_missed_offers=1)
    h.desk.pause("alice", "n'importe quoi")  # no team applied yet: any reason
    h.desk.resume("alice")
    h.desk.apply_team(team({"*": ("alice",)}, reasons=("déjeuner", "réunion")))

    with pytest.raises(UnknownPauseReason) as refused:
        h.desk.pause("alice", "sieste")
    assert refused.value.reasons == ("déjeuner", "réunion") and h.desk.secretary("alice").paused is None
    assert h.desk.pause("alice", None)["paused"] == "déjeuner"  # none given: the first
    h.desk.resume("alice")
    h.desk.registrations_changed(frozenset({"alice"}))
    queued_call(h)
    h.clock.advance(h.desk.settings.ring_timeout_s + 1)  # she lets it ring out: paused by the system
    assert h.desk.secretary("alice").paused == "1 appel manqué"


def test_every_state_change_goes_to_the_history_with_who_made_it(desk_of):
    h = desk_of(secretaries={"*": ("alice",)}, login_required=True, max_missed_offers=1)
    h.desk.registrations_changed(frozenset({"alice"}))
    h.desk.login("alice")
    h.desk.pause("alice", "déjeuner", by="super")
    h.desk.pause("alice", "déjeuner", by="super")  # no change: no row
    h.desk.resume("alice", by="alice")
    queued_call(h)
    h.clock.advance(h.desk.settings.ring_timeout_s + 1)
    h.desk.registrations_changed(frozenset())
    h.desk.registrations_changed(frozenset({"alice"}))  # her phone back: the automatic pause ends
    h.desk.logout("alice", by="super")

    assert [(c.state, c.reason, c.by) for c in h.history] == [
        ("registered", None, BY_REGISTRATION),
        ("logged_in", None, "alice"),
        ("paused", "déjeuner", "super"),
        ("resumed", None, "alice"),
        ("paused", "1 appel manqué", BY_MISSED_OFFERS),
        ("unregistered", None, BY_REGISTRATION),
        ("registered", None, BY_REGISTRATION),
        ("resumed", None, BY_REGISTRATION),
        ("logged_out", None, "super"),
    ]
    assert all(c.secretary == "alice" and c.at == h.controller.now() for c in h.history[-1:])
    published = [m.payload for m in h.published.on("/secretaries/alice/state")]
    assert {"state": "paused", "reason": "déjeuner", "by": "super"}.items() <= published[2].items()


def test_a_team_change_is_published_with_its_version(desk_of):
    h = desk_of(secretaries={"*": ("alice",)})
    h.desk.apply_team(team({"*": ("alice", "bob")}, version=7))
    [sent] = h.published.on("/team")
    assert (sent.payload["type"], sent.payload["version"], sent.retain) == ("team_changed", 7, True)


# --- the book on its own: whatever the changes, it is the book a fresh start would build -------------

NAMES = ["alice", "bob", "carol", "sip:accueil@192.0.2.10"]
KEYS = ["*", "p1/*", "p1/general", "line:nord"]
teams = st.dictionaries(st.sampled_from(KEYS), st.lists(st.sampled_from(NAMES), min_size=1, unique=True), max_size=4)


@settings(max_examples=150, deadline=None)
@given(st.lists(teams, min_size=1, max_size=6))
def test_reconfigured_book_matches_a_fresh_one_and_keeps_every_secretary_object(changes):
    book = QueueBook({"*": ("alice",)}, EDGE, login_required=True)
    seen = {a.uri: a for a in book.secretaries()}
    for coverage in changes:
        book.reconfigure(coverage, {})
        fresh = QueueBook(coverage, EDGE, login_required=True)
        assert sorted(a.uri for a in book.secretaries()) == sorted(a.uri for a in fresh.secretaries())
        for practice, queue, line in (("p1", "general", None), ("p1", "other", None), ("p2", "x", "line:nord")):
            assert [a.uri for a in book.covering(practice, queue, line)] == \
                   [a.uri for a in fresh.covering(practice, queue, line)]
        for a in book.secretaries():
            assert seen.setdefault(a.uri, a) is a  # once known, always the same object
