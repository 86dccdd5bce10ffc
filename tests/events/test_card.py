"""The practice card and the screen-pop, from the example dialplans: pure, no broker."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from callrouter.domain.ivr import TIMEOUT
from callrouter.domain.model import TimeRange
from callrouter.events import card
from tests.factories import examples

AT = dt.datetime(2027, 2, 3, 9, 15, tzinfo=dt.timezone.utc)
PHONE = re.compile(r"\+?\d[\d .]{7,}\d")


@pytest.fixture(scope="module")
def plans():
    return examples()


def test_card_of_a_multi_site_practice_names_sites_practitioners_and_diary(plans):
    c = card.practice_card(plans["msp-val-de-moselle"])
    assert c["name"] == "Maison de santé du Val de Moselle"
    assert [s["id"] for s in c["sites"]] == ["metz", "ars"]
    assert c["sites"][1]["address"].startswith("3 place de la République")
    assert c["platform"] == "maiia" and c["platform_label"] == "Maiia"
    assert c["booking_link"].startswith("https://www.maiia.com/")
    assert "Dr Klein" in c["instructions"]
    ped = next(t for t in c["consultation_types"] if t["id"] == "pediatrie")
    assert ped["practitioners"] == ["Dr Sophie Klein"]
    assert ped["sites"] == ["Site d'Ars-sur-Moselle"]
    assert ped["duration_min"] == 30 and ped["duration_label"] == "30 min"
    new = next(t for t in c["consultation_types"] if t["id"] == "nouveau-patient")
    assert new["patients"] == "new" and new["patients_label"] == "Nouveaux patients uniquement"
    assert new["booking"] == "filter" and new["bookable_directly"] is False
    assert new["sites_label"] == "Tous les sites"
    assert "médecin traitant" in new["notes"]
    slot = c["reserved_slots"][1]
    assert slot["days_label"] == "mardi et jeudi"
    assert slot["hours"] == "17:00-18:00" and slot["hours_label"] == "de 17h00 à 18h00"
    assert slot["purpose"] == "nourrissons fébriles"
    assert slot["practitioner"] == "Dr Sophie Klein" and slot["site"] == "Site d'Ars-sur-Moselle"


def test_card_never_carries_a_phone_number_or_an_email(plans):
    """Practitioners' mobiles and e-mails are in the dialplans; they must not reach any screen."""
    for plan in plans.values():
        text = json.dumps(card.practice_card(plan), ensure_ascii=False)
        assert not PHONE.search(text), plan.practice
        assert "@" not in text, plan.practice


def test_card_is_json_serialisable_for_every_example(plans):
    for plan in plans.values():
        assert json.loads(json.dumps(card.practice_card(plan)))["practice"] == plan.practice


def test_card_of_a_practice_without_diary_has_empty_lists(plans):
    from dataclasses import replace

    c = card.practice_card(replace(plans["cabinet-dr-martin"], diary=None))
    assert c["consultation_types"] == [] and c["reserved_slots"] == []
    assert c["platform"] is None and c["instructions"] == ""


def test_screen_pop_carries_the_caller_the_reason_the_ivr_answers_and_the_card(plans):
    plan = plans["msp-val-de-moselle"]
    pop = card.screen_pop(plan, call_id="c0ffee", at=AT, secretary="alice", caller="+33612345678",
                          calls_today=3, site="ars", queue="priority", reason="urgence", tier="urgent",
                          ivr_answers=[("triage", "9"), ("triage", "2")], console_url="http://console/x")
    assert pop["type"] == "screen_pop" and pop["call_id"] == "c0ffee"
    assert pop["at"] == "2027-02-03T09:15:00+00:00"
    assert pop["caller"] == {"number": "+33612345678", "withheld": False, "calls_today": 3,
                             "calls_today_label": "3e appel aujourd'hui"}
    assert pop["site"]["name"] == "Site d'Ars-sur-Moselle"
    assert pop["queue"] == {"id": "priority", "label": "Demandes urgentes"}
    assert pop["tier_label"] == "Urgent"
    assert pop["ivr_answers"] == [
        {"menu": "triage", "digit": "9", "reason": None, "tier": None, "label": "choix invalide"},
        {"menu": "triage", "digit": "2", "reason": "urgence", "tier": "urgent", "label": "urgence"},
    ]
    assert pop["card"] == card.practice_card(plan)
    json.dumps(pop)


def test_screen_pop_of_a_withheld_caller_on_the_main_line(plans):
    pop = card.screen_pop(plans["cabinet-dr-martin"], call_id="c1", at=AT, secretary="bob", caller=None,
                          calls_today=0, ivr_answers=[("triage", TIMEOUT)])
    assert pop["caller"]["withheld"] is True and pop["caller"]["number"] is None
    assert pop["site"] is None and pop["queue"] is None and pop["tier_label"] is None
    assert pop["ivr_answers"][0]["label"] == "aucun choix (délai dépassé)"


@pytest.mark.parametrize("days, label", [
    ((0, 1, 2, 3, 4), "du lundi au vendredi"),
    ((1, 3), "mardi et jeudi"),
    ((5,), "samedi"),
    ((0, 2, 4), "lundi, mercredi et vendredi"),
    (tuple(range(7)), "tous les jours"),
    ((), ""),
])
def test_days_label_in_french(days, label):
    assert card.days_label(days) == label


def test_hours_label_and_calls_today_label():
    assert card.hours_label(TimeRange(8 * 60 + 30, 9 * 60)) == "de 08h30 à 09h00"
    assert card.calls_today_label(1) == "Premier appel aujourd'hui"
    assert card.calls_today_label(2) == "2e appel aujourd'hui"


def test_every_platform_a_dialplan_accepts_has_its_label_on_the_card(tmp_path):
    """One list: a platform the schema accepts but the card does not know (or the reverse) fails."""
    from callrouter.dialplan import schema
    from tests.factories import dialplan_text, load_one

    assert set(schema.PLATFORMS) == set(card.PLATFORMS)
    for platform in schema.PLATFORMS:
        plan = load_one(tmp_path, dialplan_text(extra=f"diary:\n  platform: {platform}"), name=f"{platform}.yaml")
        label = card.practice_card(plan)["platform_label"]
        assert label and label != platform, platform  # a name for people, not the code
    labels = {p: card.platform_label(p) for p in ("clickdoc", "docorga", "medoucine")}
    assert labels == {"clickdoc": "ClickDoc", "docorga": "Docorga", "medoucine": "Medoucine"}


def test_screen_pop_carries_when_the_caller_entered_the_queue(plans):
    queued = AT - dt.timedelta(minutes=2, seconds=5)
    pop = card.screen_pop(plans["cabinet-dr-martin"], call_id="c1", at=AT, secretary="bob", caller=None,
                          calls_today=1, queued_at=queued)
    assert pop["queued_at"] == "2027-02-03T09:12:55+00:00"
    assert card.screen_pop(plans["cabinet-dr-martin"], call_id="c2", at=AT, secretary="bob", caller=None,
                           calls_today=1)["queued_at"] is None
