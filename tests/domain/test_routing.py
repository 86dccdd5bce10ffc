"""decide(): the route, the IVR walk and the reasons, on the example practices."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from callrouter.domain.call import Call, mask_number
from callrouter.domain.model import AnnounceAction, CallbackOfferAction, HangupAction, IvrAction, QueueAction
from callrouter.domain.routing import Router, decide, overflow_decision
from tests.factories import examples

PARIS = ZoneInfo("Europe/Paris")
REUNION = ZoneInfo("Indian/Reunion")
MARTIN = "+33143550101"
MSP_MAIN, MSP_ARS = "+33387000100", "+33387000201"
PEDIA = "+262262410001"


@pytest.fixture(scope="module")
def router():
    return Router(examples().values())


def at(y, m, d, hh, mm=0, tz=PARIS):
    return dt.datetime(y, m, d, hh, mm, tzinfo=tz)


def test_open_hours_play_welcome_then_triage(router):
    d = router.decide(Call(MARTIN), at(2026, 11, 23, 10))
    assert (d.status, d.route) == ("open", "open")
    assert d.action == AnnounceAction("welcome", IvrAction("triage"))
    assert d.practice == "cabinet-dr-martin"
    assert d.dialplan_version == router.dialplans["cabinet-dr-martin"].version


def test_appointment_choice_queues_with_its_reason(router):
    d = router.decide(Call(MARTIN, digits=("3",)), at(2026, 11, 23, 10))
    assert d.action == QueueAction("general")
    assert d.reason == "rendez-vous" and d.tier is None
    assert "menu 'triage', 3 (rendez-vous): queue 'general'" in d.why


def test_urgent_choice_queues_in_priority_and_starts_the_tier(router):
    d = router.decide(Call(MARTIN, digits=("2",)), at(2026, 11, 23, 10))
    assert d.action == QueueAction("priority") and d.tier == "urgent"


def test_vital_choice_tells_to_dial_15_and_starts_the_vital_tier(router):
    d = router.decide(Call(MARTIN, digits=("1",)), at(2026, 11, 23, 22))
    assert d.action == AnnounceAction("call_15", HangupAction())
    assert d.tier == "vital" and d.route == "closed"


def test_invalid_digit_keeps_the_caller_in_the_menu(router):
    d = router.decide(Call(MARTIN, digits=("9",)), at(2026, 11, 23, 10))
    assert d.action == IvrAction("triage")
    assert any("'9' is not an option" in w for w in d.why)
    d2 = router.decide(Call(MARTIN, digits=("9", "3")), at(2026, 11, 23, 10))
    assert d2.action == QueueAction("general")


def test_christmas_inside_the_annual_closure_says_closure(router):
    d = router.decide(Call(MARTIN), at(2026, 12, 25, 10))
    assert d.status == "closure"
    assert d.action == AnnounceAction("closure_message", IvrAction("triage_closed"))
    assert "closure: congés de fin d'année" in d.why


def test_exceptional_opening_on_a_holiday(router):
    assert router.decide(Call(MARTIN), at(2027, 5, 8, 10)).status == "open"   # 8 mai, permanence
    assert router.decide(Call(MARTIN), at(2027, 5, 8, 12)).status == "holiday"


def test_each_site_has_its_own_hours(router):
    friday_afternoon = at(2026, 11, 27, 15)
    assert router.decide(Call(MSP_MAIN), friday_afternoon).status == "open"
    ars = router.decide(Call(MSP_ARS), friday_afternoon)
    assert ars.status == "closed" and ars.site == "ars"


def test_good_friday_in_moselle_but_not_in_paris(router):
    good_friday = at(2027, 3, 26, 10)
    msp = router.decide(Call(MSP_MAIN), good_friday)
    assert msp.status == "holiday" and msp.action == AnnounceAction("holiday_message", IvrAction("triage_closed"))
    assert router.decide(Call(MARTIN), good_friday).status == "open"


def test_reunion_local_time_and_its_own_holiday(router):
    # 10:00 in Saint-Denis is 07:00 in Paris: the practice is open there
    assert router.decide(Call(PEDIA), at(2026, 11, 23, 10, tz=REUNION)).status == "open"
    assert router.decide(Call(PEDIA), at(2026, 11, 23, 7, 15, tz=PARIS)).status == "open"
    d = router.decide(Call(PEDIA), at(2027, 12, 20, 10, tz=REUNION))  # a Monday
    assert d.status == "holiday" and "Abolition de l'esclavage" in d.why[0]


def test_unknown_number_is_told_and_hung_up(router):
    d = router.decide(Call("+33999999999"), at(2026, 11, 23, 10))
    assert d.status == "unknown_number" and d.practice is None
    assert d.action == AnnounceAction("unknown_number", HangupAction())


def test_overflow_goes_to_the_overflow_route(router):
    dialplan = router.dialplans["cabinet-dr-martin"]
    d = overflow_decision(dialplan, Call(MARTIN, digits=("3",)), at(2026, 11, 23, 10), "wait")
    assert d.route == "overflow" and d.action == CallbackOfferAction()
    assert d.reason == "rendez-vous"


def test_decision_serialises(router):
    d = decide(router.dialplans["cabinet-dr-martin"], Call(MARTIN, digits=("3",)), at(2026, 11, 23, 10))
    assert d.to_dict()["action"] == {"kind": "queue", "queue": "general", "announce": None}


@pytest.mark.parametrize("number, masked", [
    ("+33143550101", "+33*******01"), ("0143550101", "01******01"), (None, "anonymous"), ("123", "***"),
])
def test_numbers_are_masked_for_logs(number, masked):
    assert mask_number(number) == masked
