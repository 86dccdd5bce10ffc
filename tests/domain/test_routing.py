"""decide(): the route, the IVR walk and the reasons, on the example practices."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.domain.call import Call, mask_number
from callrouter.domain.ivr import TIMEOUT
from callrouter.domain.model import AnnounceAction, CallbackOfferAction, HangupAction, IvrAction, QueueAction
from callrouter.domain.routing import Router, awaiting_menu, decide, overflow_decision
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


def test_unknown_number_is_refused_with_404_unanswered(router):
    d = router.decide(Call("+33999999999"), at(2026, 11, 23, 10))
    assert d.status == "unknown_number" and d.practice is None
    assert d.reject == 404 and d.action == HangupAction()
    assert router.decide(Call(MARTIN), at(2026, 11, 23, 10)).reject is None


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


def test_a_digit_pressed_after_closing_time_answers_the_open_menu_the_caller_heard(router):
    """Arrived at 18:59:50 (open: welcome, then triage), pressed 3 at 19:00:10: the open menu's 3
    (appointment, general queue), not the closed menu's 3 (voicemail)."""
    arrived = dt.datetime(2026, 11, 23, 18, 59, 50, tzinfo=PARIS)
    pressed = arrived + dt.timedelta(seconds=20)
    d = router.decide(Call(MARTIN, digits=("3",), arrived_at=arrived), pressed)
    assert (d.status, d.route, d.action, d.reason) == ("open", "open", QueueAction("general"), "rendez-vous")
    d = router.decide(Call(MARTIN, digits=("2",), arrived_at=arrived), pressed)
    assert d.action == QueueAction("priority") and d.tier == "urgent"


def test_a_digit_pressed_after_opening_time_answers_the_closed_menu_the_caller_heard(router):
    arrived = dt.datetime(2026, 11, 23, 8, 29, 55, tzinfo=PARIS)
    d = router.decide(Call(MARTIN, digits=("3",), arrived_at=arrived), arrived + dt.timedelta(seconds=30))
    assert d.route == "closed" and d.reason == "message"


EXAMPLE_ROUTER = Router(examples().values())
EXAMPLE_NUMBERS = [MARTIN, MSP_MAIN, MSP_ARS, PEDIA]
week_instants = st.datetimes(min_value=dt.datetime(2026, 11, 20), max_value=dt.datetime(2027, 1, 10)).map(
    lambda t: t.replace(tzinfo=dt.timezone.utc))


@given(number=st.sampled_from(EXAMPLE_NUMBERS), arrived=week_instants,
       later=st.integers(0, 3 * 3600), picks=st.lists(st.integers(0, 20), max_size=3))
@settings(max_examples=300, deadline=None)
def test_digits_are_resolved_against_the_route_in_force_at_arrival(number, arrived, later, picks):
    """Whenever the digits are pressed, the decision is the one taken at the arrival instant: the
    route, its menus and the options of the menus the caller heard."""
    router = EXAMPLE_ROUTER
    dialplan = router.by_number[number]
    call = Call(number, arrived_at=arrived)
    for pick in picks:  # walk the menus the caller hears, choosing among their options
        menu = awaiting_menu(router.decide(call, arrived).action)
        if menu is None:
            break
        options = sorted(dialplan.ivr[menu.menu].options) + ["9", TIMEOUT]
        call = call.with_digit(options[pick % len(options)])
    at_arrival = router.decide(call, arrived)
    pressed_later = router.decide(call, arrived + dt.timedelta(seconds=later))
    assert pressed_later == at_arrival
    assert at_arrival.route == router.decide(Call(number), arrived).route
