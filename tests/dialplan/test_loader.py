"""Loading dialplans: valid files become models; every error names file, line and what is wrong."""

from __future__ import annotations

import datetime as dt

import pytest

from callrouter.dialplan.loader import load_paths
from callrouter.domain.model import QueueAction, TimeRange
from callrouter.prompts import Catalogue
from tests.factories import EXAMPLES, dialplan_text, load_errors, load_one, write


def line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in text")


def test_examples_load_and_cover_three_kinds_of_practice():
    result = load_paths([EXAMPLES], Catalogue.load())
    assert result.errors == []
    by_id = {d.practice: d for d in result.dialplans}
    assert set(by_id) == {"cabinet-dr-martin", "msp-val-de-moselle", "pediatrie-saint-denis"}
    msp = by_id["msp-val-de-moselle"]
    assert msp.calendar.subdivision == "57"
    assert set(msp.sites) == {"metz", "ars"}
    assert len(msp.practitioners) >= 3
    assert by_id["pediatrie-saint-denis"].calendar.timezone == "Indian/Reunion"
    assert by_id["pediatrie-saint-denis"].calendar.subdivision == "974"


def test_version_is_a_content_hash_that_changes_with_the_rules(tmp_path):
    text = dialplan_text()
    a = load_one(tmp_path, text)
    b = load_one(tmp_path, text, name="same.yaml")
    c = load_one(tmp_path, text.replace("14:00-18:00", "14:00-18:30"), name="changed.yaml")
    assert a.version == b.version
    assert a.version != c.version
    assert len(a.version) == 12


def test_times_stay_times_and_numbers_stay_text(tmp_path):
    """YAML 1.1 reads 08:00 as 480 and +33... as an integer; we must not."""
    d = load_one(tmp_path, dialplan_text(hours="  mon: [08:00-12:00]\n  tue: 09:30-10:00"))
    assert d.calendar.hours.days[0] == (TimeRange(8 * 60, 12 * 60),)
    assert d.calendar.hours.days[1] == (TimeRange(9 * 60 + 30, 10 * 60),)
    assert d.numbers == ("+33100000001",)


def test_unknown_key_gets_line_and_did_you_mean(tmp_path):
    text = dialplan_text(extra="diray:\n  platform: doctolib")
    errors = load_errors(tmp_path, text)
    assert len(errors) == 1
    e = errors[0]
    assert e.file.endswith("practice.yaml")
    assert e.line == line_of(text, "diray:")
    assert 'unknown key "diray"' in e.message and 'did you mean "diary"' in e.message


def test_overlapping_hours_are_refused(tmp_path):
    text = dialplan_text(hours='  mon-fri: ["08:00-12:00", "11:30-18:00"]')
    errors = load_errors(tmp_path, text)
    assert any("overlaps" in e.message and "08:00-12:00" in e.message for e in errors)
    assert all(e.line == line_of(text, "mon-fri") for e in errors)


def test_overnight_range_overlapping_next_morning_is_refused(tmp_path):
    text = dialplan_text(hours='  mon: ["20:00-09:00"]\n  tue: ["08:00-12:00"]')
    errors = load_errors(tmp_path, text)
    assert any("on tue" in e.message and "overlaps" in e.message for e in errors)


def test_ivr_option_to_unknown_queue(tmp_path):
    text = dialplan_text().replace("queue: general}", "queue: generale}")
    errors = load_errors(tmp_path, text)
    assert len(errors) == 1
    assert errors[0].line == line_of(text, "queue: generale")
    assert 'queue "generale" is not defined' in errors[0].message
    assert 'did you mean "general"' in errors[0].message


def test_unknown_prompt(tmp_path):
    text = dialplan_text().replace("prompt: triage_menu", "prompt: triage_menue")
    errors = load_errors(tmp_path, text)
    assert [e.line for e in errors] == [line_of(text, "triage_menue")]
    assert 'unknown prompt "triage_menue"' in errors[0].message and "triage_menu" in errors[0].message


def test_practice_prompt_texts_count_as_known(tmp_path):
    text = dialplan_text(extra="prompts:\n  my_menu: Bonjour, tapez 1.").replace("prompt: triage_menu", "prompt: my_menu")
    assert load_one(tmp_path, text).prompts == {"my_menu": "Bonjour, tapez 1."}


def test_unknown_time_zone(tmp_path):
    text = dialplan_text(timezone="Europe/Pari")
    errors = load_errors(tmp_path, text)
    assert errors[0].line == line_of(text, "timezone:")
    assert "Europe/Paris" in errors[0].message


def test_two_practices_claiming_one_number(tmp_path):
    write(tmp_path, dialplan_text(practice="a"), "a.yaml")
    write(tmp_path, dialplan_text(practice="b"), "b.yaml")
    result = load_paths([tmp_path], Catalogue.load())
    assert len(result.errors) == 1
    e = result.errors[0]
    assert e.file.endswith("b.yaml") and "a.yaml" in e.message and "+33100000001" in e.message
    assert e.line == line_of(dialplan_text(), "numbers:")
    assert [d.practice for d in result.dialplans] == ["a"]  # the good file is kept


def test_all_errors_of_a_file_are_reported_at_once(tmp_path):
    text = dialplan_text(timezone="Mars/Olympus", hours='  mon-fry: ["08:00-12:00"]').replace(
        "queue: general}", "queue: nowhere}").replace("+33100000001", "0100000001")
    errors = load_errors(tmp_path, text)
    messages = " | ".join(e.message for e in errors)
    assert "not a time zone" in messages
    assert '"mon-fry" is not a day' in messages
    assert 'queue "nowhere" is not defined' in messages
    assert "write +33100000001" in messages
    assert len({e.line for e in errors}) == 4


def test_duplicate_key_is_refused_not_silently_overwritten(tmp_path):
    text = dialplan_text(routes="  closed: hangup")
    errors = load_errors(tmp_path, text)
    assert any("written twice" in e.message and e.line == line_of(text, "closed: hangup") for e in errors)


def test_yaml_syntax_error_has_its_line(tmp_path):
    text = dialplan_text() + "oops: [unclosed\nmore: 1\n"
    errors = load_errors(tmp_path, text)
    assert len(errors) == 1 and "YAML syntax error" in errors[0].message
    assert errors[0].line >= line_of(text, "oops:")


def test_closure_ending_before_it_starts(tmp_path):
    text = dialplan_text(calendar="  closures:\n    - {from: 2026-12-31, to: 2026-12-24, reason: x}")
    errors = load_errors(tmp_path, text)
    assert "ends" in errors[0].message and errors[0].line == line_of(text, "closures:") + 1


def test_vital_tier_must_tell_the_caller_to_dial_15(tmp_path):
    text = dialplan_text().replace("      announce: call_15\n", "")
    errors = load_errors(tmp_path, text)
    assert any("vital" in e.path and "15" in e.message for e in errors)


def test_unknown_subdivision_lists_what_is_accepted(tmp_path):
    text = dialplan_text(calendar='  subdivision: "99"')
    errors = load_errors(tmp_path, text)
    assert "unknown subdivision" in errors[0].message and "974" in errors[0].message


def test_closures_openings_and_sites(tmp_path):
    cal = """  subdivision: "67"
  closures:
    - {from: 2026-12-24T12:00, to: 2026-12-26T08:00, reason: Noël}
    - {date: 2027-01-15, reason: formation}
  openings:
    - {date: 2026-12-26, hours: "22:00-02:00", reason: garde de nuit}"""
    extra = """sites:
  nord:
    name: Site nord
    numbers: ["+33100000002"]
    hours:
      sat: ["09:00-12:00"]"""
    d = load_one(tmp_path, dialplan_text(calendar=cal, extra=extra))
    assert d.calendar.subdivision == "6AE"  # Bas-Rhin shares the Alsace calendar
    assert d.calendar.closures[0].period.start == dt.datetime(2026, 12, 24, 12)
    assert d.calendar.closures[1].period.end == dt.datetime(2027, 1, 16)  # whole day, inclusive
    assert d.calendar.openings[0].period.end == dt.datetime(2026, 12, 27, 2)  # crosses midnight
    assert d.number_sites == {"+33100000001": None, "+33100000002": "nord"}
    assert d.sites["nord"].calendar.hours.days[5] == (TimeRange(540, 720),)
    assert d.sites["nord"].calendar.closures == d.calendar.closures


@pytest.mark.parametrize("bad, expected", [
    ("practice: Cabinet Test", "not a valid id"),
    ("numbers: []", "no number reaches this practice"),
    ("routes: {open: {queue: general}}", 'missing required key "closed"'),
])
def test_top_level_mistakes(tmp_path, bad, expected):
    key = bad.split(":")[0]
    lines = [line for line in dialplan_text().splitlines() if not line.startswith(key + ":")]
    if key == "routes":
        lines = [line for line in lines if not line.startswith("  open: {ivr") and not line.startswith("  closed: {announce")]
    errors = load_errors(tmp_path, bad + "\n" + "\n".join(lines) + "\n")
    assert any(expected in e.message for e in errors), [str(e) for e in errors]


def test_option_actions(tmp_path):
    text = dialplan_text().replace('"3": {reason: rendez-vous, queue: general}',
                                   '"3": {reason: rendez-vous, queue: general, announce: please_hold}')
    d = load_one(tmp_path, text)
    assert d.ivr["triage"].options["3"].action == QueueAction("general", "please_hold")
    assert d.ivr["triage"].options["3"].reason == "rendez-vous"


def test_unreadable_and_empty_files(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00bad")
    result = load_paths([tmp_path], Catalogue.load())
    assert sorted(e.message for e in result.errors) == ["file is empty", "file is not UTF-8 text"]


def test_alias_bomb_is_refused(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefg", "bcdefgh"))
    errors = load_errors(tmp_path, bomb)
    assert "too large" in errors[0].message


# --- subdivisions: what an administrator writes ---------------------------------------------------

@pytest.mark.parametrize("written, expected", [
    ('"75"', None),        # Paris: the national holidays
    ("75", None),
    ("01", None),
    ('"9"', None),         # Ariège written without its leading zero
    ('"2A"', None),        # Corsica
    ("2b", None),
    ('"95"', None),
    ('"57"', "57"),        # Moselle
    ('"67"', "6AE"),       # Bas-Rhin and Haut-Rhin share the Alsace calendar
    ("68", "6AE"),
    ('"971"', "971"),
    ("974", "974"),
    ('"976"', "976"),
    ("moselle", "57"),
    ('"975"', "PM"),       # Saint-Pierre-et-Miquelon, an overseas collectivity with its own holidays
])
def test_every_departement_number_is_accepted(tmp_path, written, expected):
    d = load_one(tmp_path, dialplan_text(calendar=f"  subdivision: {written}"))
    assert d.calendar.subdivision == expected


def test_a_mainland_departement_gets_the_national_holidays_and_moselle_its_own(tmp_path):
    from callrouter.domain import calendar as cal

    paris = load_one(tmp_path, dialplan_text(calendar='  subdivision: "75"'), name="paris.yaml")
    metz = load_one(tmp_path, dialplan_text(calendar='  subdivision: "57"', practice="metz",
                                             number="+33100000002"), name="metz.yaml")
    good_friday = dt.datetime(2027, 3, 26, 10, tzinfo=dt.timezone.utc)
    assert cal.state_at(paris.calendar, good_friday).status == cal.OPEN
    assert cal.state_at(metz.calendar, good_friday).status == cal.HOLIDAY


def test_a_site_may_name_a_mainland_departement(tmp_path):
    extra = 'sites:\n  nord:\n    name: Site nord\n    numbers: ["+33100000002"]\n    subdivision: "59"'
    d = load_one(tmp_path, dialplan_text(calendar='  subdivision: "57"', extra=extra))
    assert d.calendar.subdivision == "57" and d.sites["nord"].calendar.subdivision is None


@pytest.mark.parametrize("written, expected", [
    ('"20"', "2A (Corse-du-Sud) or 2B (Haute-Corse)"),
    ('"9744"', 'did you mean "974"'),
    ("mozelle", 'did you mean "moselle"'),
    ('"96"', "01 to 95"),
    ('"00"', "01 to 95"),
])
def test_an_invalid_subdivision_has_its_line_and_a_hint(tmp_path, written, expected):
    text = dialplan_text(calendar=f"  subdivision: {written}")
    errors = load_errors(tmp_path, text)
    assert len(errors) == 1 and errors[0].line == line_of(text, "subdivision:")
    assert errors[0].path == "calendar.subdivision"
    assert "unknown subdivision" in errors[0].message and expected in errors[0].message, errors[0].message


# --- the on-call rota on public holidays --------------------------------------------------------

ROTA = """on_call:
  weekly:
    - {days: mon-fri, hours: "20:00-08:00", who: dr-a}
    - {days: sat-sun, hours: "08:00-20:00", who: dr-a}
    - {days: sat-sun, hours: "20:00-08:00", who: dr-a}
"""


def test_a_rota_covers_holidays_like_a_sunday_by_default_with_the_practice_holidays(tmp_path):
    from callrouter.domain.model import HolidayCover

    d = load_one(tmp_path, dialplan_text(calendar='  subdivision: "57"', extra=ROTA))
    assert d.on_call.holidays == HolidayCover(like=6)
    assert d.on_call.holiday_calendar == ("FR", "57")


@pytest.mark.parametrize("written, like, entries", [
    ("  holidays: sun", 6, ()),
    ("  holidays: sat", 5, ()),
    ("  holidays: usual", None, ()),
    ('  holidays:\n    - {hours: "08:00-20:00", who: dr-a}\n    - {hours: "20:00-08:00", who: dr-a}', None,
     ((8 * 60, 20 * 60), (20 * 60, 8 * 60))),
])
def test_a_rota_says_what_applies_on_a_public_holiday(tmp_path, written, like, entries):
    d = load_one(tmp_path, dialplan_text(extra=ROTA + written))
    assert d.on_call.holidays.like == like
    assert [(e.hours.start, e.hours.end, e.who) for e in d.on_call.holidays.entries] == [(*e, "dr-a") for e in entries]


@pytest.mark.parametrize("written, needle, expected", [
    ("  holidays: sunday", "holidays:", 'did you mean "sun"'),
    ("  holidays: []", "holidays:", "at least one entry"),
    ('  holidays:\n    - {hours: "08:00-20:00", who: dr-z}', "dr-z", 'practitioner "dr-z" is not defined'),
    ('  holidays:\n    - {days: sun, hours: "08:00-20:00", who: dr-a}', "days: sun, hours", 'unknown key "days"'),
    ('  holidays: {like: sun}', "holidays:", "a day (sun), usual, or a list"),
])
def test_a_wrong_holiday_rule_is_refused_with_its_line(tmp_path, written, needle, expected):
    text = dialplan_text(extra=ROTA + written)
    errors = load_errors(tmp_path, text)
    assert any(expected in e.message and e.line == line_of(text, needle) for e in errors), [str(e) for e in errors]
