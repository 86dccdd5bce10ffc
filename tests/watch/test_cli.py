"""`callrouter calendar` says when the next watch calls go out, in the practice's local time across
a change of time, and warns when the settings' kill switch keeps them in, or when none is planned."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.factories import REPO, dialplan_text, write

CLI = str(Path(sys.executable).with_name("callrouter"))
WATCH = """\
watch:
  forwarding: {forwarding}
  at: ["03:10"]
  numbers: [{{call: "+33142000001", returns_on: "+33100000001"}}]
"""


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def calendar(tmp_path, forwarding="always", config=None, hours='  mon-fri: ["08:00-12:00", "14:00-18:00"]', *more):
    write(tmp_path, dialplan_text(hours=hours, extra=WATCH.format(forwarding=forwarding)))
    settings = tmp_path / "callrouter.yaml"
    settings.write_text(config or "watch: {enabled: true, caller_number: '+33180000100'}\n")
    return run("calendar", "--practice", "test-practice", "--from", "2026-03-28", "--days", "3",
               "--dialplans", str(tmp_path), "--config", str(settings), *more)


def test_the_next_watch_calls_in_local_time_across_the_change_of_time(tmp_path):
    r = calendar(tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    start = lines.index("forwarding watch: 3 call(s) planned, the next ones:")
    watched = lines[start + 1:start + 4]
    assert [line.split()[:2] for line in watched] == [["Sat", "2026-03-28"], ["Sun", "2026-03-29"],
                                                      ["Mon", "2026-03-30"]]
    assert all("03:10" <= line.split()[2] < "03:25" for line in watched)  # 03:10 local, CET then CEST
    assert all("calls +33142000001, back on +33100000001 (window 03:10-03:25)" in line for line in watched)
    assert "watch.enabled" not in r.stdout
    data = json.loads(calendar(tmp_path, "always", None, '  mon-fri: ["08:00-12:00", "14:00-18:00"]', "--json").stdout)
    assert [w["at"][11:13] + w["at"][-6:] for w in data["watches"]] == ["03+01:00", "03+02:00", "03+02:00"]


def test_the_kill_switch_is_said(tmp_path):
    r = calendar(tmp_path, config="watch: {enabled: false}\n")
    assert r.returncode == 0, r.stderr
    assert "! the forwarding watch is disabled in" in r.stdout and "(watch.enabled is false)" in r.stdout


def test_a_watch_that_never_finds_the_practice_closed_is_warned_about(tmp_path):
    r = calendar(tmp_path, "closed", None, '  daily: ["00:00-24:00"]')
    assert r.returncode == 0, r.stderr
    assert "forwarding watch: 0 call(s) planned" in r.stdout
    assert "! the watch section plans no call in these days" in r.stdout
