"""The callback-number dialogue: offer -> 1 -> read back, or type a number -> 1 confirms, 2 changes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callrouter.domain import callback_dialogue as cd
from callrouter.domain.callback_dialogue import (
    TIMEOUT, Confirmed, Confirming, Ended, GiveUp, Listen, Offered, Say, Typing,
)

READ_BACK_0612345678 = Say(("callback_number_is", *(f"digit_{d}" for d in "0612345678"),
                            "callback_confirm_or_change"))
ENTER = Say(("callback_enter_number",))
INVALID = Say(("callback_invalid_number", "callback_enter_number"))


def run(caller: str | None, keys: str | list[str]) -> list[cd.Output]:
    state, first = cd.offer(caller)
    outputs = [first]
    for key in keys:
        state, out = cd.step(state, key)
        outputs.append(out)
    return outputs


def test_the_offer_is_said_with_the_dialplans_prompt_or_the_catalogues():
    assert cd.offer("+33612345678") == (Offered("+33612345678"), Say(("callback_offer",)))
    assert cd.offer(None, "offre_maison") == (Offered(None), Say(("offre_maison",)))
    assert cd.offer("+4915112345678")[0] == Offered(None)  # foreign: not callable, she types one


@pytest.mark.parametrize("caller, keys, last", [
    ("+33612345678", "1", READ_BACK_0612345678),  # her number is read back
    ("+33612345678", "11", Confirmed("+33612345678")),
    ("+33612345678", "3", None),  # only 1 accepts
    ("+33612345678", [TIMEOUT], GiveUp()),
    (None, "1", ENTER),  # hidden: she types one
    ("+33899123456", "1", ENTER),  # premium: never called back
    (None, "10612345678", READ_BACK_0612345678),  # ten digits end the number
    (None, "1061234567", Listen()),
    (None, "10612#", INVALID),  # too short: refused with a word
    (None, ["1", "0", "6", TIMEOUT], INVALID),  # a pause ends the number
    (None, "1#", ENTER),  # nothing typed: asked again
    (None, "106*", ENTER),  # * starts again
    (None, "10612345678" + "2", ENTER),  # 2 at the read-back: another number
    (None, "10612345678" + "5", None),
    (None, ["1", *"0612345678", TIMEOUT], GiveUp()),
    ("+33612345678", "12" + "0712345678" + "1", Confirmed("+33712345678")),
])
def test_each_key_of_the_dialogue(caller, keys, last):
    assert run(caller, keys)[-1] == last


def test_three_numbers_may_be_typed_then_goodbye():
    assert run(None, "1#")[-1] == ENTER  # second try
    assert run(None, "1##")[-1] == ENTER  # third
    assert run(None, "1###")[-1] == GiveUp()
    assert run("+33612345678", "12##")[-1] == ENTER
    assert run("+33612345678", "12###")[-1] == GiveUp()  # a change at the read-back counts as a try


def test_starting_again_with_star_does_not_use_a_try():
    assert run(None, "1" + "0*" * 10 + "#")[-1] == ENTER
    state, _ = cd.offer(None)
    for key in "1" + "0*" * 10:
        state, _ = cd.step(state, key)
    assert state == Typing(1)


def test_an_ended_dialogue_reads_no_key():
    for key in ["1", "2", "#", TIMEOUT]:
        assert cd.step(Ended(None), key) == (Ended(None), None)
        assert cd.step(Ended("+33612345678"), key) == (Ended("+33612345678"), None)


@given(st.sampled_from([None, "+33612345678", "+33899000000", "0612345678"]),
       st.lists(st.sampled_from([*"0123456789#*", TIMEOUT]), max_size=60))
def test_any_keys_keep_the_dialogue_in_bounds(caller, keys):
    """Whatever she presses: at most TRIES numbers typed, a confirmed number is one we may call,
    and once ended nothing else is said."""
    state, _ = cd.offer(caller)
    ended = False
    for key in keys:
        state, out = cd.step(state, key)
        if ended:
            assert out is None
        if isinstance(state, (Typing, Confirming)):
            assert state.tries <= cd.TRIES
        if isinstance(state, Typing):
            assert len(state.digits) < cd.NUMBER_DIGITS
        if isinstance(out, Confirmed):
            assert cd.callable_number(out.number) == out.number
        ended = isinstance(state, Ended)
