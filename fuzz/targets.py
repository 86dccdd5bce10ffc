"""The fuzz targets: each takes the bytes a fuzzer made and fails (raises) only on a bug.

- `dialplan`: a dialplan file's bytes through the loader (callrouter.dialplan.loader.load_text). It
  must return either a dialplan or errors, never both, never raise; every error is a DialplanError
  naming the file and a line of it (what `callrouter check` and the daemon's reload print).
- `ical`: an on-call rota feed through the iCalendar reader (callrouter.domain.ical.parse) and on
  to the practice's shifts (callrouter.dialplan.rotafeed.shifts_from_ics): values or errors with
  their line, never an exception.
- `sip`: a received SIP message as the media worker gets it from pjsua2 (text decoded with
  `surrogateescape`) through callrouter.media.sipmsg and into the IncomingCall report, encoded and
  decoded again as the controller reads it: an INVITE whose report fails is refused with a 500, so
  any exception there is a caller turned away. The same bytes also go through the TCP framing and
  header reading of callrouter.devtools.sipwire, which the hostile tests rely on.

Each function is also what tests/hostile/test_fuzz_corpus.py replays for every corpus file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable

from callrouter.dialplan.errors import DialplanError, DialplanInvalid
from callrouter.dialplan.loader import load_text
from callrouter.dialplan.rotafeed import shifts_from_ics
from callrouter.devtools import sipwire
from callrouter.domain import ical as icalendar
from callrouter.domain.model import Dialplan, Practitioner
from callrouter.domain.oncall import occurrences, shift_covers
from callrouter.media import protocol as p
from callrouter.media.sipmsg import summarise_invite
from callrouter.prompts import Catalogue

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"
SOURCE = "fuzz.yaml"
PROMPTS = Catalogue.load().names()  # the prompts shipped with the project
PEOPLE = {"dr-martin": Practitioner("dr-martin", "Dr Martin"), "dr-roux": Practitioner("dr-roux", "Dr Roux")}
NAMES = {"Garde Martin": "dr-martin", "Trou": None}
NOW = dt.datetime(2026, 3, 29, 2, 30)  # local time: the night the clocks go forward in Paris
MAX_SHIFTS = 20
FEED = (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20260105T190000\r\nDTEND:20260106T080000\r\n"
        b"SUMMARY:Garde Martin\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def _feed(practice: str, url: str) -> tuple[bytes, str] | None:
    """A rota feed for any URL a fuzzed dialplan names (its cached copy), so feeds are read too."""
    return (FEED, "feed.ics") if url.endswith(".ics") else None


def dialplan(data: bytes) -> None:
    result, errors = load_text(data, SOURCE, PROMPTS if data[:1] != b"#" else None, _feed)
    assert isinstance(errors, list), type(errors)
    if result is not None:
        assert isinstance(result, Dialplan) and not errors, (result, errors)
        return
    assert errors, "neither a dialplan nor an error"
    for error in errors:
        assert type(error) is DialplanError, error
        assert error.file in (SOURCE, "feed.ics"), error
        assert type(error.line) is int and error.line >= 1, error
        assert str(error).startswith(f"{error.file}:{error.line}:"), str(error)
    str(DialplanInvalid(errors))  # what load_file raises


def ical(data: bytes) -> None:
    cal = icalendar.parse(data)
    for error in cal.errors:
        assert type(error.line) is int and error.line >= 1, error
        assert isinstance(error.message, str) and error.message, error
    for event in cal.events:
        assert isinstance(event.start, dt.date) and isinstance(event.end, dt.date), event
        assert event.line >= 1, event
    shifts, errors = shifts_from_ics(data, "Europe/Paris", NAMES, PEOPLE)
    for error in errors:
        assert type(error.line) is int and error.line >= 1, error
    for shift in shifts[:MAX_SHIFTS]:
        assert shift.who in PEOPLE or shift.who is None, shift
        # What routing asks of a shift at every call: is it on now, and this week's occurrences.
        shift_covers(shift, NOW)
        list(occurrences(shift, NOW.date(), NOW.date() + dt.timedelta(days=7)))


def sip(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")  # as SWIG hands pjsua2's message over
    summary = summarise_invite(text)
    for value in (summary.number, summary.caller):  # logged (masked), stored, matched against numbers
        assert not any(c < " " or c == "\x7f" for c in value), value  # no control character (sipmsg)
    report = p.IncomingCall(leg="w0-1-1", sip_call_id=summary.call_id, from_uri=summary.from_uri,
                            to_uri=summary.to_uri, number=summary.number, caller=summary.caller,
                            caller_name=summary.caller_name, headers=dict(summary.headers))
    line = p.encode(report)
    assert p.decode_event(line) == report, (report, line)
    buffer = bytearray(data)
    for frame in sipwire.frames(buffer):
        sipwire.status_of(frame)
        sipwire.header_values(frame, "call-id")
    sipwire.status_of(data)


TARGETS: dict[str, Callable[[bytes], None]] = {"dialplan": dialplan, "ical": ical, "sip": sip}
# Inputs longer than these are refused before the parser: the loader's MAX_FILE_BYTES would turn
# them into one error; the edge drops SIP messages over sip.max_message_bytes (8192).
MAX_LEN = {"dialplan": 16384, "ical": 16384, "sip": 8192}


def corpus_files(target: str) -> list[Path]:
    return sorted(path for path in (CORPUS / target).iterdir() if path.is_file())
