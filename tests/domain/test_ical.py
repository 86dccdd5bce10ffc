"""The iCalendar reader: folding, parameters, times and zones, recurrence rules, errors with lines."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from callrouter.domain import ical

PARIS = ZoneInfo("Europe/Paris")


def cal(*events: str, before: str = "") -> bytes:
    body = "".join(f"BEGIN:VEVENT\r\n{e.strip()}\r\nEND:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{before}{body}END:VCALENDAR\r\n".encode()


def one(*lines: str) -> ical.Event:
    parsed = ical.parse(cal("\r\n".join(lines)))
    assert parsed.errors == []
    [event] = parsed.events
    return event


def test_folded_lines_escapes_and_quoted_parameters():
    e = one("UID:a", "SUMMARY:Garde\\, Dr", "  Martin\\; nuit", 'DTSTART;TZID="Europe/Paris":20261123T190000',
            "DTEND;X-NOTE=\"a;b:c\";TZID=Europe/Paris:20261124T080000")
    assert e.summary == "Garde, Dr Martin; nuit"
    assert e.start == dt.datetime(2026, 11, 23, 19, tzinfo=PARIS)
    assert e.end == dt.datetime(2026, 11, 24, 8, tzinfo=PARIS)


@pytest.mark.parametrize("line, expected", [
    ("DTSTART:20261123T180000Z", dt.datetime(2026, 11, 23, 18, tzinfo=dt.timezone.utc)),
    ("DTSTART:20261123T190000", dt.datetime(2026, 11, 23, 19)),  # floating: local wherever read
    ("DTSTART;TZID=Romance Standard Time:20261123T190000", dt.datetime(2026, 11, 23, 19, tzinfo=PARIS)),
    ("DTSTART;TZID=/Europe/Paris:20261123T190000", dt.datetime(2026, 11, 23, 19, tzinfo=PARIS)),
    ("DTSTART;VALUE=DATE:20261225", dt.date(2026, 12, 25)),
], ids=["utc", "floating", "windows-zone", "slash-prefixed", "all-day"])
def test_start_times(line, expected):
    e = one("SUMMARY:x", line)
    assert e.start == expected and type(e.start) is type(expected)


def test_end_defaults_and_durations():
    assert one("SUMMARY:x", "DTSTART;VALUE=DATE:20261225").end == dt.date(2026, 12, 26)
    e = one("SUMMARY:x", "DTSTART:20261123T190000", "DURATION:PT13H")
    assert e.end == dt.datetime(2026, 11, 24, 8)
    assert one("SUMMARY:x", "DTSTART;VALUE=DATE:20261225", "DURATION:P1W").end == dt.date(2027, 1, 1)


def test_weekly_rule_with_exdates_over_several_lines():
    e = one("SUMMARY:x", "DTSTART;TZID=Europe/Paris:20261123T190000", "DTEND;TZID=Europe/Paris:20261124T080000",
            "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;UNTIL=20270131T225959Z;WKST=SU",
            "EXDATE;TZID=Europe/Paris:20261125T190000,20261207T190000", "EXDATE;VALUE=DATE:20261209")
    assert e.rule == ical.Rule("WEEKLY", 2, (0, 2), dt.datetime(2027, 1, 31, 22, 59, 59, tzinfo=dt.timezone.utc),
                               None, 6)
    assert e.exdates == (dt.datetime(2026, 11, 25, 19, tzinfo=PARIS), dt.datetime(2026, 12, 7, 19, tzinfo=PARIS),
                         dt.date(2026, 12, 9))


def test_cancelled_events_and_overrides_are_kept_marked():
    parsed = ical.parse(cal("UID:a\r\nSUMMARY:x\r\nDTSTART:20261123T190000\r\nSTATUS:CANCELLED",
                            "UID:b\r\nSUMMARY:y\r\nRECURRENCE-ID;TZID=Europe/Paris:20261130T190000\r\n"
                            "DTSTART;TZID=Europe/Paris:20261130T200000\r\nDTEND;TZID=Europe/Paris:20261201T080000"))
    assert [e.cancelled for e in parsed.events] == [True, False]
    assert parsed.events[1].recurrence_id == dt.datetime(2026, 11, 30, 19, tzinfo=PARIS)


def test_timezone_blocks_and_alarms_are_skipped():
    tz = "BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    parsed = ical.parse(cal("SUMMARY:x\r\nDTSTART:20261123T190000\r\nBEGIN:VALARM\r\nTRIGGER:-PT15M\r\n"
                            "DTSTART:20000101T000000\r\nEND:VALARM", before=tz))
    assert parsed.errors == [] and [e.start for e in parsed.events] == [dt.datetime(2026, 11, 23, 19)]


@pytest.mark.parametrize("event, line, message", [
    ("SUMMARY:x\r\nDTSTART:20261123T190000\r\nRRULE:FREQ=MONTHLY", 7, "FREQ=MONTHLY is not supported"),
    ("SUMMARY:x\r\nDTSTART:20261123T190000\r\nRRULE:FREQ=WEEKLY;BYDAY=1MO", 7, 'BYDAY "1MO" is not supported'),
    ("SUMMARY:x\r\nDTSTART:20261123T190000\r\nRRULE:FREQ=WEEKLY;BYSETPOS=1", 7, "BYSETPOS is not supported"),
    ("SUMMARY:x\r\nDTSTART;TZID=Europe/Pariss:20261123T190000", 6, "unknown time zone TZID=Europe/Pariss"),
    ("SUMMARY:x\r\nDTSTART:2026-11-23", 6, "is not a date-time"),
    ("SUMMARY:x\r\nDTSTART:20261123T190000\r\nDTEND:20261123T180000", 7, "ends before it starts"),
    ("SUMMARY:x\r\nDTSTART;VALUE=DATE:20261123\r\nDTEND:20261124T080000", 7, "both be dates"),
    ("SUMMARY:x", 4, "without DTSTART"),
    ("SUMMARY:x\r\nDTSTART:20261123T190000\r\nRDATE:20261125T190000", 7, "RDATE is not supported"),
], ids=["monthly", "ordinal-byday", "bysetpos", "bad-zone", "bad-date", "backwards", "mixed", "no-start", "rdate"])
def test_errors_name_the_line(event, line, message):
    parsed = ical.parse(cal(event))
    assert parsed.events == []
    [error] = parsed.errors
    assert message in error.message and error.line == line, error


def test_not_a_calendar_and_unclosed_blocks():
    assert ical.parse(b"hello\n").errors[-1].message.startswith("not an iCalendar file")
    parsed = ical.parse(b"BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\n")
    assert parsed.errors == [ical.ParseError(3, "BEGIN:VEVENT is never closed")]
    assert ical.parse(b"\xff\xfe").errors[0].message == "the calendar is not UTF-8 text"


def test_a_broken_event_does_not_hide_the_good_ones():
    parsed = ical.parse(cal("SUMMARY:bad\r\nDTSTART:nope", "SUMMARY:good\r\nDTSTART:20261123T190000"))
    assert [e.summary for e in parsed.events] == ["good"] and len(parsed.errors) == 1
