"""What `make fuzz` found in the on-call rota feeds (fuzz/targets.py `ical`), replayed: feeds whose
dates sit at the edge of what Python's dates hold, or shifts lasting centuries, are errors with
their line, never an exception when the feed is read nor when a call asks who is on call."""

from __future__ import annotations

import datetime as dt

import pytest

from callrouter.dialplan.rotafeed import shifts_from_ics
from callrouter.domain import ical
from callrouter.domain.model import Practitioner
from callrouter.domain.oncall import occurrences, shift_covers

PEOPLE = {"dr-martin": Practitioner("dr-martin", "Dr Martin")}
NAMES = {"Garde Martin": "dr-martin"}
NOW = dt.datetime(2026, 12, 1, 10, 0)

# The two inputs the fuzzer wrote (var/fuzz/crashes/ical/), as it wrote them: a DTEND thousands of
# years on made shift_covers() raise OverflowError at every call of the practice.
FOUND = {
    "dtend-year-6202": b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Cabinet//Planning de garde//FR\r\nBEGIN:VEVENT\r\n"
                       b"UID:w@cab\r\nSUMMARY:Astreinte Dr Martin\r\nDTSTART;VALUE=DATE:20261128\r\n"
                       b"DTEND;VALUE=DATE:62021130\r\nRRULE:FREQ=WEEKLY;INTERVAL=2;UNTIL=20270630\r\nEND:VEVENT\r\n"
                       b"END:VCALENDAR\r\n",
    "dtend-year-6026": b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Cabinet//Planning de garde//FR\r\nBEGIN:VEVENT\r\n"
                       b"UID:f@cab\r\nSUMMARY:Trou\r\nDTSTART:20261201T080000\r\nDTEND:60261201T120000\r\nEND:VEVENT\r\n"
                       b"BEGIN:VEVENT\r\nUID:c@cab\r\nSTATUAN:CSCELLED\r\nSUMMARY:Dr Martin\r\nDTSTART:20261202T080000\r\n"
                       b"DTEND:20261202T120000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
}


def feed(*lines: str) -> bytes:
    body = "".join(line + "\r\n" for line in lines)
    return f"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nSUMMARY:Garde Martin\r\n{body}END:VEVENT\r\nEND:VCALENDAR\r\n".encode()


@pytest.mark.parametrize("name", sorted(FOUND))
def test_the_inputs_the_fuzzer_found_are_errors_with_their_line(name):
    shifts, errors = shifts_from_ics(FOUND[name], "Europe/Paris", {"Trou": None}, PEOPLE)
    assert shifts == ()
    assert [(e.line, e.message) for e in errors] == [
        (4, "the event's dates must lie between the years 1900 and 2199")]


@pytest.mark.parametrize("lines, line, message", [
    (("DTSTART:20261201T080000", "DTEND:20281201T120000"), 2,
     "an on-call shift of more than 366 days: write it as shorter events (or a recurring one)"),
    (("DTSTART:99991231T233000Z", "DTEND:99991231T234500Z"), 2,
     "the event's dates must lie between the years 1900 and 2199"),
    (("DTSTART:99900101T190000", "DTEND:99900102T080000", "RRULE:FREQ=DAILY;COUNT=5000"), 2,
     "the event's dates must lie between the years 1900 and 2199"),
    (("DTSTART;VALUE=DATE:99991231",), 5, "DTSTART: the date or duration is out of range"),
    (("DTSTART:99991231T230000", "DURATION:P2D"), 6, "DURATION: the date or duration is out of range"),
    (("DTSTART:20261201T080000", "DURATION:P99999999999999W"), 6, "DURATION: the date or duration is out of range"),
], ids=["centuries-long", "utc-past-9999-in-paris", "count-past-9999", "all-day-9999-no-dtend",
        "duration-past-9999", "duration-beyond-c-int"])
def test_dates_past_what_a_rota_can_mean_are_refused_at_their_line(lines, line, message):
    shifts, errors = shifts_from_ics(feed(*lines), "Europe/Paris", NAMES, PEOPLE)
    assert shifts == ()
    assert [(e.line, e.message) for e in errors] == [(line, message)]


def test_an_until_past_2199_is_a_rule_without_end_and_the_shift_is_asked_at_each_call():
    shifts, errors = shifts_from_ics(feed("DTSTART:20261201T080000", "DTEND:20261201T120000",
                                          "RRULE:FREQ=DAILY;UNTIL=99991231T235959Z"), "Europe/Paris", NAMES, PEOPLE)
    assert errors == [] and len(shifts) == 1
    assert shifts[0].recurrence.until is None
    assert shift_covers(shifts[0], NOW)
    assert len(list(occurrences(shifts[0], NOW.date(), NOW.date() + dt.timedelta(days=6)))) == 7


def test_a_shift_of_a_year_is_still_a_shift():
    shifts, errors = shifts_from_ics(feed("DTSTART;VALUE=DATE:20260101", "DTEND;VALUE=DATE:20270101"),
                                     "Europe/Paris", NAMES, PEOPLE)
    assert errors == [] and shift_covers(shifts[0], NOW)


def test_the_reader_itself_reports_an_overflowing_end_instead_of_raising():
    cal = ical.parse(feed("DTSTART;VALUE=DATE:99991231"))
    assert cal.events == [] and [(e.line, e.message) for e in cal.errors] == [
        (5, "DTSTART: the date or duration is out of range")]
