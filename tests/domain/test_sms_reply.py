"""Reading a practitioner's SMS reply: only an explicit yes acknowledges, a refusal declines,
several open chains without a reference are asked about, never guessed."""

import re

import pytest
from hypothesis import given, settings, strategies as st

from callrouter.domain import sms_reply as r
from callrouter.domain.sms_reply import NO, UNCLEAR, YES, Reading, read_reply


@pytest.mark.parametrize("text, expected", [
    ("OK", Reading(YES)),
    ("ok", Reading(YES)),
    (" Ok ! ", Reading(YES)),
    ("O.K.", Reading(YES)),
    ("oui", Reading(YES)),
    ("Ouí.", Reading(YES)),
    ("OUI !!!", Reading(YES)),
    ("1", Reading(YES)),
    ("OK E42", Reading(YES, 42)),
    ("ok e42", Reading(YES, 42)),
    ("Oui, É42", Reading(YES, 42)),
    ("1 E7", Reading(YES, 7)),
    ("E42 OK", Reading(YES, 42)),
    ("E42 ok E43", Reading(UNCLEAR)),
    ("OK je rappelle", Reading(UNCLEAR)),      # says something else too: not an explicit yes
    ("ok mais pas avant 18h", Reading(UNCLEAR)),
    ("12", Reading(UNCLEAR)),
    ("OK 42", Reading(UNCLEAR)),               # a reference is E and digits
    ("NON", Reading(NO)),
    ("non je ne peux pas, voyez avec Dr B", Reading(NO)),
    ("Non.", Reading(NO)),
    ("NON E42", Reading(NO, 42)),
    ("E42 non", Reading(NO, 42)),
    ("non E42 au bloc", Reading(NO, 42)),
    ("non E42 ou E43", Reading(NO)),           # two references: which one is not for us to choose
    ("2", Reading(NO)),
    ("2 E42", Reading(NO, 42)),
    ("STOP", Reading(NO)),
    ("Pas dispo", Reading(NO)),
    ("pas disponible ce soir", Reading(NO)),
    ("Indisponible", Reading(NO)),
    ("Impossible, je suis de garde", Reading(NO)),
    ("je ne peux pas", Reading(NO)),
    ("Négatif", Reading(NO)),
    ("Nous arrivons", Reading(UNCLEAR)),
    ("Merci", Reading(UNCLEAR)),
    ("", Reading(UNCLEAR)),
    (None, Reading(UNCLEAR)),
    ("E42", Reading(UNCLEAR)),
    ("20 minutes", Reading(UNCLEAR)),
])
def test_read_reply(text, expected):
    assert read_reply(text) == expected


REFUSAL_STARTS = ["NON", "non", "Non", "nOn", "N.O.N", "non,", "2", "2 ", "STOP", "stop", "Pas dispo",
                  "PAS DISPO", "indispo", "Impossible", "je ne peux pas", "Négatif", "refus", "E42 non"]


@settings(max_examples=500)
@given(start=st.sampled_from(REFUSAL_STARTS), rest=st.text(max_size=40))
def test_a_reply_starting_with_a_refusal_is_never_a_yes(start, rest):
    glue = " " if start[-1].isdigit() else ""  # "2" then "3" is "23", not a refusal
    assert read_reply(start + glue + rest).kind != YES


@settings(max_examples=500)
@given(st.text(max_size=60))
def test_a_yes_is_only_ok_oui_or_1_with_at_most_a_reference(text):
    if read_reply(text).kind == YES:
        compact = "".join(r._tokens(text))
        assert re.fullmatch(r"(E[0-9]+)?(OK|OUI|1)(E[0-9]+)?", compact), compact


@given(word=st.sampled_from(["ok", "OK", "oui", "Oui", "1"]), punct=st.text(alphabet=" .,;:!?'-", max_size=5),
       ref=st.integers(min_value=1, max_value=10**6))
def test_punctuation_and_spaces_around_a_yes_and_its_reference_do_not_matter(word, punct, ref):
    assert read_reply(f"{punct}{word}{punct} E{ref}{punct}") == Reading(YES, ref)


# --- what to do -----------------------------------------------------------------------------------

ONE = [r.Candidate(42, True)]
TWO = [r.Candidate(43, True), r.Candidate(42, True)]


@pytest.mark.parametrize("reading, chains, expected", [
    (Reading(YES), ONE, r.Acknowledge(42)),
    (Reading(NO), ONE, r.Decline(42)),
    (Reading(YES, 42), ONE, r.Acknowledge(42)),
    (Reading(YES, 99), ONE, r.Explain((42,), "unknown_reference")),
    (Reading(UNCLEAR), ONE, r.Explain((42,), "unclear")),
    (Reading(YES), TWO, r.AskWhich((43, 42), YES)),
    (Reading(NO), TWO, r.AskWhich((43, 42), NO)),
    (Reading(YES, 42), TWO, r.Acknowledge(42)),
    (Reading(NO, 43), TWO, r.Decline(43)),
    (Reading(YES), [r.Candidate(43, False), r.Candidate(42, True)], r.Acknowledge(42)),
    (Reading(YES, 43), [r.Candidate(43, False), r.Candidate(42, True)], r.AlreadyClosed(43)),
    (Reading(YES), [r.Candidate(43, False)], r.AlreadyClosed(43)),
    (Reading(UNCLEAR), [r.Candidate(43, False)], r.AlreadyClosed(43)),
    (Reading(YES), [], r.Ignore()),
    (Reading(NO), [], r.Ignore()),
], ids=["yes", "no", "yes-ref", "unknown-ref", "unclear", "ask-which-yes", "ask-which-no", "two-yes-ref",
        "two-no-ref", "one-open-one-closed", "ref-to-closed", "all-closed", "thanks-after-close",
        "stranger-yes", "stranger-no"])
def test_decide(reading, chains, expected):
    assert r.decide(reading, chains) == expected


@given(kind=st.sampled_from([YES, NO]), ids=st.lists(st.integers(1, 10**6), min_size=2, max_size=5, unique=True))
def test_several_open_chains_and_no_reference_is_always_asked_never_guessed(kind, ids):
    action = r.decide(Reading(kind), [r.Candidate(i, True) for i in ids])
    assert action == r.AskWhich(tuple(ids), kind)


def test_the_answers_are_french_and_name_the_references():
    assert r.answer(r.AskWhich((43, 42), YES)) == (
        "Plusieurs alertes sont en cours (E43, E42). Répondez OK suivi de la référence pour prendre en "
        "charge (ex. : OK E43), ou NON suivi de la référence si vous ne pouvez pas.")
    assert r.answer(r.Explain((42,), "unclear")) == (
        "Réponse non comprise. Répondez OK E42 pour prendre en charge l'alerte, ou NON E42 si vous ne "
        "pouvez pas.")
    assert "E42" in r.answer(r.Decline(42)) and "Refus enregistré" in r.answer(r.Decline(42))
    assert r.answer(r.Ignore()) is None
    assert r.reference(42) == "E42" and read_reply(f"OK {r.reference(42)}") == Reading(YES, 42)
