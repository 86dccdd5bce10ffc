"""On-call rotas from iCalendar: the dialplan syntax, errors with file:line, the calendar's holes,
and feeds published at a URL, fetched by the daemon from a real HTTP server on loopback."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.web import resource, server

from callrouter.dialplan.feeds import RotaFeedService
from callrouter.dialplan.loader import load_paths
from callrouter.dialplan.registry import DialplanRegistry
from callrouter.dialplan.rotafeed import cache_path, shifts_from_ics
from callrouter.domain import escalation as chain
from callrouter.domain import ical
from callrouter.domain.model import OnCallRota, Practitioner
from callrouter.domain.oncall import on_call_at
from callrouter.prompts import Catalogue
from tests.factories import REPO

D = dt.datetime
PARIS = ZoneInfo("Europe/Paris")
CLI = [str(Path(sys.executable).with_name("callrouter"))]

DIALPLAN = """\
practice: cab-feed
name: Cabinet du flux
timezone: Europe/Paris
numbers: ["+33100000077"]
hours:
  mon-fri: ["08:00-19:00"]
routes:
  open: hangup
  closed: {{escalate: urgent}}
practitioners:
  - {{id: dr-martin, name: Dr Martin, phone: "+33611111111"}}
  - {{id: dr-roux, name: Dr Roux, phone: "+33622222222"}}
on_call:
{on_call}
escalation:
  tiers:
    urgent:
      steps:
        - {{sms: on_call}}
"""

# Weeknights Monday-Thursday with Dr Martin (not Wednesday 2 December), weekends with Dr Roux.
ROTA = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Cabinet//Planning de garde//FR
BEGIN:VEVENT
UID:nights@cab
SUMMARY:Garde Dr Martin
DTSTART;TZID=Europe/Paris:20261123T190000
DTEND;TZID=Europe/Paris:20261124T080000
RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH
EXDATE;TZID=Europe/Paris:20261202T190000
END:VEVENT
BEGIN:VEVENT
UID:weekends@cab
SUMMARY:Astreinte week-end
DTSTART;TZID=Europe/Paris:20261127T190000
DTEND;TZID=Europe/Paris:20261130T080000
RRULE:FREQ=WEEKLY
END:VEVENT
END:VCALENDAR
"""
FILE_FEED = '  ical:\n    file: rota.ics\n    map: {"Astreinte week-end": dr-roux}'


def write_plan(tmp_path: Path, on_call: str = FILE_FEED, ics: str | None = ROTA) -> Path:
    path = tmp_path / "cab-feed.yaml"
    path.write_text(DIALPLAN.format(on_call=on_call), encoding="utf-8")
    if ics is not None:
        (tmp_path / "rota.ics").write_text(ics.replace("\n", "\r\n"), encoding="utf-8", newline="")
    return path


def load(tmp_path: Path, **kw):
    return load_paths([write_plan(tmp_path, **kw)], Catalogue.load())


def test_a_file_feed_gives_who_is_on_call_and_the_escalation_reaches_them(tmp_path):
    result = load(tmp_path)
    assert result.errors == []
    [plan] = result.dialplans
    rota = plan.on_call
    assert rota.feed.file == "rota.ics" and rota.feed.names == {"Astreinte week-end": "dr-roux"}
    assert on_call_at(rota, D(2026, 11, 24, 22)) == "dr-martin"
    assert on_call_at(rota, D(2026, 12, 2, 22)) is None                 # EXDATE
    assert on_call_at(rota, D(2026, 11, 29, 12)) == "dr-roux"           # Sunday, weekend shift
    sunday_noon = D(2026, 11, 29, 12, tzinfo=PARIS)
    step = plan.escalation["urgent"].steps[0]
    assert chain.resolve(step, 0, 0, plan, sunday_noon) == chain.Send(0, 0, "sms", "dr-roux", "+33622222222", 0)


def test_editing_the_feed_file_reloads_the_rules(tmp_path):
    write_plan(tmp_path)
    registry = DialplanRegistry([tmp_path], Catalogue.load, lambda: D.now(dt.timezone.utc))
    assert registry.reload().ok and not registry.changed_on_disk()
    assert on_call_at(registry.dialplans["cab-feed"].on_call, D(2026, 12, 2, 22)) is None
    (tmp_path / "rota.ics").write_text(ROTA.replace("EXDATE;TZID=Europe/Paris:20261202T190000\n", ""))
    assert registry.changed_on_disk()
    assert registry.reload().loaded == ("cab-feed",)
    assert on_call_at(registry.dialplans["cab-feed"].on_call, D(2026, 12, 2, 22)) == "dr-martin"
    (tmp_path / "rota.ics").write_text(ROTA.replace("Garde Dr Martin", "Garde Dr Personne"))
    report = registry.reload()
    assert report.kept == ("cab-feed",)  # a broken feed keeps the last good rules, like a broken YAML
    status = registry.dialplan_status()["cab-feed"]
    assert status.source.endswith("cab-feed.yaml") and "rota.ics:6: on_call.ical" in status.last_error
    assert on_call_at(registry.dialplans["cab-feed"].on_call, D(2026, 12, 2, 22)) == "dr-martin"


def test_the_feed_is_part_of_the_rules_version(tmp_path):
    first = load(tmp_path).dialplans[0].version
    second = load(tmp_path, ics=ROTA.replace("20261202T190000", "20261203T190000")).dialplans[0].version
    assert first != second


def test_a_name_the_feed_uses_but_nobody_maps_is_an_error_at_its_line_in_the_feed(tmp_path):
    result = load(tmp_path, on_call="  ical: {file: rota.ics}")
    [error] = result.errors
    assert error.file == str(tmp_path / "rota.ics") and error.line == 14  # its SUMMARY line
    assert 'event "Astreinte week-end" names no practitioner' in error.message
    assert str(error).startswith(f"{tmp_path / 'rota.ics'}:14: on_call.ical:")


def test_a_feed_file_that_is_a_device_or_too_large_is_refused_at_its_line(tmp_path):
    """/dev/zero would never end; a file past the calendar's limit is read no further than it."""
    result = load(tmp_path, on_call='  ical: {file: /dev/zero, map: {"Astreinte week-end": dr-roux}}')
    [error] = result.errors
    assert error.line > 0 and "cannot read /dev/zero: not a regular file" in error.message
    (tmp_path / "huge.ics").write_bytes(b"BEGIN:VCALENDAR\r\n" + b"X" * (ical.MAX_BYTES + 10))
    result = load(tmp_path, on_call='  ical: {file: huge.ics, map: {"Astreinte week-end": dr-roux}}')
    assert any(f"larger than {ical.MAX_BYTES} bytes" in e.message for e in result.errors), result.errors


def test_nobody_in_the_map_declares_a_hole(tmp_path):
    result = load(tmp_path, on_call='  ical: {file: rota.ics, map: {"Astreinte week-end": nobody}}')
    assert result.errors == [] and on_call_at(result.dialplans[0].on_call, D(2026, 11, 29, 12)) is None


@pytest.mark.parametrize("on_call, line, message", [
    ("  ical: {file: missing.ics}", 14, "cannot read"),
    ("  ical: {file: rota.ics, url: 'https://x.example/r.ics'}", 14, 'either "file"'),
    ("  ical: {url: 'ftp://x.example/r.ics'}", 14, "is not an http(s):// address"),
    ('  ical: {file: rota.ics, map: {"Astreinte week-end": dr-rouxx}}', 14, 'practitioner "dr-rouxx" is not defined'),
    ("  ical: {file: rota.ics, refresh: 10s}", 14, "refresh at most every minute"),
    ("  ical: {file: rota.ics, colour: red}", 14, 'unknown key "colour"'),
], ids=["missing-file", "file-and-url", "ftp", "unknown-practitioner", "refresh", "unknown-key"])
def test_dialplan_errors_name_the_yaml_line(tmp_path, on_call, line, message):
    errors = load(tmp_path, on_call=on_call).errors
    assert any(e.file.endswith("cab-feed.yaml") and e.line == line and message in e.message for e in errors), errors


def test_feed_syntax_errors_name_the_feed_line(tmp_path):
    errors = load(tmp_path, ics=ROTA.replace("RRULE:FREQ=WEEKLY\n", "RRULE:FREQ=MONTHLY\n")).errors
    assert [(Path(e.file).name, e.line) for e in errors] == [("rota.ics", 17)]
    assert "FREQ=MONTHLY is not supported" in errors[0].message


def test_shift_times_across_the_clock_changes_and_from_other_zones():
    ics = ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Dr Martin\r\nDTSTART:20270327T180000Z\r\n"
           "DTEND:20270328T060000Z\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:Dr Roux\r\n"
           "DTSTART;TZID=Europe/Paris:20271030T190000\r\nDTEND;TZID=Europe/Paris:20271031T080000\r\n"
           "END:VEVENT\r\nEND:VCALENDAR\r\n").encode()
    people = {"dr-martin": Practitioner("dr-martin", "Dr Martin"), "dr-roux": Practitioner("dr-roux", "Dr Roux")}
    shifts, errors = shifts_from_ics(ics, "Europe/Paris", {}, people)
    assert errors == []
    # 18:00Z is 19:00 in Paris before the change; 06:00Z is 08:00 after it (CEST).
    assert (shifts[0].period.start, shifts[0].period.end) == (D(2027, 3, 27, 19), D(2027, 3, 28, 8))
    assert (shifts[1].period.start, shifts[1].period.end) == (D(2027, 10, 30, 19), D(2027, 10, 31, 8))
    shifts, _ = shifts_from_ics(ics, "Indian/Reunion", {}, people)
    assert shifts[0].period.start == D(2027, 3, 27, 22)  # UTC+4, no summer time


def test_count_exdate_and_a_moved_instance():
    ics = ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:n\r\nSUMMARY:Dr Martin\r\n"
           "DTSTART;TZID=Europe/Paris:20261123T190000\r\nDTEND;TZID=Europe/Paris:20261124T080000\r\n"
           "RRULE:FREQ=DAILY;COUNT=4\r\nEXDATE;TZID=Europe/Paris:20261124T190000\r\nEND:VEVENT\r\n"
           "BEGIN:VEVENT\r\nUID:n\r\nSUMMARY:Dr Roux\r\nRECURRENCE-ID;TZID=Europe/Paris:20261125T190000\r\n"
           "DTSTART;TZID=Europe/Paris:20261125T200000\r\nDTEND;TZID=Europe/Paris:20261126T080000\r\nEND:VEVENT\r\n"
           "END:VCALENDAR\r\n").encode()
    people = {"dr-martin": Practitioner("dr-martin", "Dr Martin"), "dr-roux": Practitioner("dr-roux", "Dr Roux")}
    shifts, errors = shifts_from_ics(ics, "Europe/Paris", {}, people)
    assert errors == []
    rota = OnCallRota(shifts=shifts)
    got = [on_call_at(rota, D(2026, 11, day, 22)) for day in (23, 24, 25, 26, 27)]
    assert got == ["dr-martin", None, "dr-roux", "dr-martin", None]  # COUNT=4 counts the excluded 24th
    assert on_call_at(rota, D(2026, 11, 25, 19, 30)) is None  # the moved instance starts at 20:00


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CALLROUTER_CONFIG"}
    return subprocess.run([*CLI, *args], cwd=REPO, capture_output=True, text=True, timeout=60, env=env)


def test_calendar_warns_about_the_hole_the_feed_leaves(tmp_path):
    write_plan(tmp_path)
    r = run_cli("calendar", "--practice", "cab-feed", "--from", "2026-11-30", "--days", "7", "--json",
                "--dialplans", str(tmp_path))
    assert r.returncode == 0, r.stderr
    holes = [(w["start"], w["end"]) for w in json.loads(r.stdout)["warnings"] if w["kind"] == "no_on_call"]
    assert holes == [("2026-12-02T19:00:00+01:00", "2026-12-03T08:00:00+01:00")]


# --- feeds published at a URL ----------------------------------------------------------------------

class Feed(resource.Resource):
    isLeaf = True

    def __init__(self):
        super().__init__()
        self.body, self.status, self.hits = ROTA.encode(), 200, 0

    def render_GET(self, request):
        self.hits += 1
        request.setResponseCode(self.status)
        request.setHeader(b"content-type", b"text/calendar")
        return self.body


@pytest.fixture
def feed():
    site = Feed()
    port = reactor.listenTCP(0, server.Site(site), interface="127.0.0.1")
    site.url = f"http://127.0.0.1:{port.getHost().port}/private-token/rota.ics"
    yield site
    pytest_twisted.blockon(port.stopListening())


def url_plan(tmp_path: Path, url: str) -> Path:
    plans = tmp_path / "dialplans"
    plans.mkdir()
    return write_plan(plans, on_call=f'  weekly: []\n  ical: {{url: "{url}", map: {{"Astreinte week-end": dr-roux}}}}',
                      ics=None)


@pytest_twisted.inlineCallbacks
def test_the_daemon_fetches_the_feed_caches_it_and_keeps_the_last_good_copy(tmp_path, feed, caplog):
    url_plan(tmp_path, feed.url)
    cache = tmp_path / "var" / "ical"
    registry = DialplanRegistry([tmp_path / "dialplans"], Catalogue.load, lambda: D.now(dt.timezone.utc), cache)
    assert registry.reload().ok
    assert registry.dialplans["cab-feed"].on_call.shifts == ()  # nothing fetched yet: weekly pattern only
    service = RotaFeedService(lambda: registry.dialplans, cache, reactor)
    yield service.refresh_due()
    assert feed.hits == 1 and cache_path(cache, "cab-feed", feed.url).read_bytes() == ROTA.encode()
    assert registry.changed_on_disk()
    report = registry.reload()
    assert report.loaded == ("cab-feed",)
    assert on_call_at(registry.dialplans["cab-feed"].on_call, D(2026, 11, 24, 22)) == "dr-martin"
    yield service.refresh_due()
    assert feed.hits == 1  # not due again before its refresh interval

    feed.status = 503  # the feed goes down
    good = registry.dialplans["cab-feed"]
    assert (yield service.fetch(good)) is False
    feed.status, feed.body = 200, ROTA.replace("Garde Dr Martin", "Garde Dr Inconnu").encode()
    assert (yield service.fetch(good)) is False  # names nobody known: refused
    assert not registry.changed_on_disk()
    assert cache_path(cache, "cab-feed", feed.url).read_bytes() == ROTA.encode()
    assert on_call_at(registry.dialplans["cab-feed"].on_call, D(2026, 11, 24, 22)) == "dr-martin"
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "HTTP 503" in logged and "the last good copy stays in force" in logged
    assert "private-token" not in logged  # the URL's path may be a secret: only the host is logged


class _StdlibFeed(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the stdlib's name
        body = ROTA.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_calendar_fetches_a_url_feed_and_says_so_when_it_cannot(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StdlibFeed)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url_plan(tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}/rota.ics")
        args = ("calendar", "--practice", "cab-feed", "--from", "2026-11-30", "--days", "7", "--json",
                "--dialplans", str(tmp_path / "dialplans"))
        r = run_cli(*args)
        assert r.returncode == 0, r.stderr
        holes = [(w["start"], w["end"]) for w in json.loads(r.stdout)["warnings"] if w["kind"] == "no_on_call"]
        assert holes == [("2026-12-02T19:00:00+01:00", "2026-12-03T08:00:00+01:00")]
    finally:
        httpd.shutdown()
        httpd.server_close()
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    warnings = json.loads(r.stdout)["warnings"]
    assert any(w["kind"] == "rota_feed" and "could not be fetched" in w["message"] for w in warnings)
