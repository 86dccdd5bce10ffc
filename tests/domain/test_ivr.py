"""The IVR menu state machine: retries, invalid choices, timeouts, then the route's decision."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from callrouter.domain import ivr
from callrouter.domain.call import Call
from callrouter.domain.model import AnnounceAction, HangupAction, QueueAction
from callrouter.domain.routing import decide
from tests.factories import examples

DIALPLANS = examples()
MARTIN = DIALPLANS["cabinet-dr-martin"]
TRIAGE = MARTIN.ivr["triage"]  # retries 2, on_timeout: queue general
MONDAY_10 = dt.datetime(2026, 11, 23, 10, tzinfo=ZoneInfo("Europe/Paris"))


def test_entering_a_menu_plays_its_prompt():
    state, out = ivr.enter(TRIAGE)
    assert state == ivr.MenuState("triage", 0)
    assert out == ivr.Prompt(("triage_menu",), 6.0)


def test_a_valid_digit_is_chosen_even_after_failures():
    state, _ = ivr.enter(TRIAGE)
    state, out = ivr.on_digit(TRIAGE, state, "9")
    assert out == ivr.Prompt(("invalid_choice", "triage_menu"), 6.0)
    state, out = ivr.on_digit(TRIAGE, state, "3")
    assert out == ivr.Chosen("3")


def test_retries_then_exhausted():
    state, _ = ivr.enter(TRIAGE)
    outcomes = []
    for _ in range(TRIAGE.retries + 1):
        state, out = ivr.on_timeout(TRIAGE, state)
        outcomes.append(out)
    assert outcomes[:-1] == [ivr.Prompt(("no_choice", "triage_menu"), 6.0)] * TRIAGE.retries
    assert outcomes[-1] == ivr.Exhausted("timeout")


def test_mixed_failures_count_together():
    state, _ = ivr.enter(TRIAGE)
    state, _ = ivr.on_digit(TRIAGE, state, "#")
    state, _ = ivr.on_timeout(TRIAGE, state)
    state, out = ivr.on_digit(TRIAGE, state, "0")
    assert out == ivr.Exhausted("invalid")


def test_exhausted_menu_applies_on_timeout_action():
    d = decide(MARTIN, Call("+33143550101", digits=(ivr.TIMEOUT,)), MONDAY_10)
    assert d.action == QueueAction("general")
    assert any("no valid choice after 3 tries" in w for w in d.why)


def test_exhausted_menu_without_on_timeout_says_goodbye():
    msp = DIALPLANS["msp-val-de-moselle"]
    night = dt.datetime(2026, 11, 23, 23, tzinfo=ZoneInfo("Europe/Paris"))
    d = decide(msp, Call("+33387000100", digits=(ivr.TIMEOUT,)), night)
    assert d.action == AnnounceAction("goodbye", HangupAction())
