"""Who may take over a call (domain/transfer.py): table-driven, no reactor."""

from __future__ import annotations

import pytest

from callrouter.domain import transfer as rules
from callrouter.domain.serving import Secretary


def sec(name, **kw) -> Secretary:
    return Secretary(f"sip:{name}@h", username=name, **{"registered": True, **kw})


A, B = sec("a", activity="on_call"), sec("b", idle_since=5.0)
C, D = sec("c", idle_since=1.0), sec("d")
AWAY = {"paused": sec("p", paused="pause déjeuner"), "offline": sec("o", registered=False),
        "logged_out": sec("l", logged_in=False), "busy": sec("r", activity="ringing"),
        "wrap_up": sec("w", activity="wrap_up")}


def test_colleagues_are_those_covering_who_can_take_a_call_longest_idle_first():
    assert rules.colleagues([A, B, C, *AWAY.values()], A) == [C, B]


@pytest.mark.parametrize("in_progress, transferring, to, target, code", [
    (False, False, "b", B, rules.NOT_IN_PROGRESS),
    (True, True, "b", B, rules.ALREADY),
    (True, False, "x", None, rules.UNKNOWN),
    (True, False, "a", A, rules.SELF),
    (True, False, "d", D, rules.NOT_COVERING),
    *[(True, False, s.id, s, rules.NOT_AVAILABLE) for s in AWAY.values()],
    (True, False, "b", B, None),
])
def test_refusal(in_progress, transferring, to, target, code):
    covering = [A, B, C, *AWAY.values()]
    refused = rules.refusal(in_progress, transferring, A, to, target, covering)
    assert (refused.code if refused else None) == code
    if refused:
        assert refused.message and refused.status in (409, 422)


def test_no_current_secretary_is_not_in_progress():
    assert rules.refusal(True, False, None, "b", B, [B]).code == rules.NOT_IN_PROGRESS
