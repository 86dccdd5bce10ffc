"""The team as values (callrouter.domain.team): keys checked against the dialplans with French
refusals, the practices keys reach, the pause reasons cleaned, the seed from the settings. Pure:
plain dialplans in, values out."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, strategies as st

from callrouter.domain.team import (
    TeamError, checked_member, checked_reasons, covered_practices, key_problem, member_problem, phone_uri,
    seed_team, shared_lines,
)
from tests.factories import examples


def plans():
    """The example dialplans, the general queues of two of them sharing the line "nord"."""
    out = {}
    for practice, d in examples().items():
        if practice in ("cabinet-dr-martin", "msp-val-de-moselle"):
            d = dataclasses.replace(d, queues={**d.queues, "general": dataclasses.replace(d.queues["general"],
                                                                                        shared="nord")})
        out[practice] = d
    return out


DIALPLANS = plans()
PRACTICES = tuple(sorted(DIALPLANS))


@pytest.mark.parametrize("key, problem", [
    ("*", None),
    ("cabinet-dr-martin/*", None),
    ("cabinet-dr-martin/priority", None),
    ("line:nord", None),
    ("cabinet-x/*", "Le cabinet « cabinet-x » est inconnu."),
    ("cabinet-dr-martin/nursing", "La file « nursing » n'existe pas pour le cabinet « cabinet-dr-martin »."),
    ("line:sud", "La ligne partagée « sud » n'existe dans aucun plan d'appel."),
    ("line:", "La clé de couverture « line: » est mal formée : attendu « cabinet/file », « cabinet/* », "
              "« line:nom » ou « * »."),
    ("cabinet-dr-martin", "La clé de couverture « cabinet-dr-martin » est mal formée : attendu « cabinet/file », "
                          "« cabinet/* », « line:nom » ou « * »."),
    ("a/b/c", "La clé de couverture « a/b/c » est mal formée : attendu « cabinet/file », « cabinet/* », "
              "« line:nom » ou « * »."),
])
def test_each_key_is_checked_against_the_dialplans(key, problem):
    assert key_problem(key, DIALPLANS) == problem


@pytest.mark.parametrize("who, ok", [
    ("alice", True), ("a.b-c_d", True), ("sip:accueil@192.0.2.10", True), ("sips:0140000000@trunk.example:5061", True),
    ("Alice", False), ("a", False), ("sip:nohost", False), ("alice bob", False), ("x" * 201, False),
])
def test_a_member_is_a_username_or_a_sip_uri(who, ok):
    assert (member_problem(who) is None) == ok


def test_every_problem_of_a_member_is_reported_at_once():
    with pytest.raises(TeamError) as refused:
        checked_member("alice", ["cabinet-x/*", "*", "line:sud"], {"*": 0, "cabinet-y": 3, "cabinet-dr-martin": True},
                       DIALPLANS)
    assert refused.value.problems == (
        "Le cabinet « cabinet-x » est inconnu.",
        "La ligne partagée « sud » n'existe dans aucun plan d'appel.",
        "Le niveau pour « * » doit être un entier de 1 à 10.",
        "Niveau donné pour le cabinet « cabinet-y », inconnu.",
        "Le niveau pour « cabinet-dr-martin » doit être un entier de 1 à 10.")
    assert checked_member("alice", ["line:nord", "*", "*"], {"*": 10}, DIALPLANS) == (("*", "line:nord"), {"*": 10})


def test_keys_reach_their_practices():
    assert covered_practices(["cabinet-dr-martin/general"], DIALPLANS) == ("cabinet-dr-martin",)
    assert covered_practices(["line:nord"], DIALPLANS) == ("cabinet-dr-martin", "msp-val-de-moselle")
    assert covered_practices(["*"], DIALPLANS) == PRACTICES
    assert covered_practices(["cabinet-x/*", "line:sud"], DIALPLANS) == ()
    assert shared_lines(DIALPLANS) == ("nord",)


KEYS = st.sampled_from(["*", "line:nord", "line:sud", "cabinet-x/*", *(f"{p}/*" for p in PRACTICES),
                        *(f"{p}/general" for p in PRACTICES)])


@given(st.lists(KEYS), st.lists(KEYS))
def test_what_keys_reach_is_the_union_of_what_each_reaches_and_only_known_practices(a, b):
    both = covered_practices(a + b, DIALPLANS)
    assert set(both) == set(covered_practices(a, DIALPLANS)) | set(covered_practices(b, DIALPLANS))
    assert set(both) <= set(PRACTICES)
    assert ("*" in a + b) <= (both == PRACTICES)


def test_pause_reasons_are_trimmed_and_checked():
    assert checked_reasons(["  pause ", "déjeuner   rapide", "réunion"]) == ("pause", "déjeuner rapide", "réunion")
    for bad, problem in (([], "Donnez de 1 à 20 motifs de pause."), (["x"] * 21, "Donnez de 1 à 20 motifs de pause."),
                         (["Pause", "pause"], "Le motif « pause » est donné deux fois."),
                         (["   "], "Le motif «  » doit faire de 1 à 40 caractères."),
                         ([3], "Chaque motif de pause doit être un texte.")):
        with pytest.raises(TeamError) as refused:
            checked_reasons(bad)
        assert problem in refused.value.problems


def test_the_settings_seed_a_team_of_everyone_they_name():
    team = seed_team({"*": ("alice", "bob", "alice"), "x/*": ("sip:p@h",), "y/*": ()},
                     {"alice": {"x": 2}, "zoe": {"x": 5}, "bob": {}}, (" pause ", "pause", "", "réunion"))
    assert team.secretaries == ("alice", "bob", "sip:p@h")
    assert dict(team.coverage) == {"*": ("alice", "bob"), "x/*": ("sip:p@h",)}
    assert dict(team.levels) == {"alice": {"x": 2}} and team.pause_reasons == ("pause", "réunion")
    assert team.version == 0 and team.keys_of("alice") == ("*",)


def test_where_a_member_is_rung():
    assert phone_uri("sip:p@h", None) == "sip:p@h"
    assert phone_uri("alice", "edge:5060") == "sip:alice@edge:5060"
    assert phone_uri("alice", None) is None
