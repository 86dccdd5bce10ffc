"""The administrator's commands, run as a user would: the installed `callrouter` script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.factories import EXAMPLES, REPO, dialplan_text, write

CLI = [str(Path(sys.executable).with_name("callrouter"))]


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_check_examples_exit_zero():
    r = run("check", str(EXAMPLES))
    assert r.returncode == 0, r.stderr
    assert "3 valid, 0 invalid" in r.stdout


def test_check_reports_file_line_reason_and_exits_one(tmp_path):
    shutil.copy(EXAMPLES / "cabinet-dr-martin-paris.yaml", tmp_path / "good.yaml")
    bad = write(tmp_path, dialplan_text(practice="bad", number="+33100000009").replace("queue: general}", "queue: genral}"), "bad.yaml")
    r = run("check", str(tmp_path))
    assert r.returncode == 1
    line = next(i for i, l in enumerate(bad.read_text().splitlines(), 1) if "genral" in l)
    assert f"{bad}:{line}:" in r.stderr and 'queue "genral" is not defined' in r.stderr
    assert "1 valid, 1 invalid" in r.stdout


def test_check_json(tmp_path):
    write(tmp_path, "practice: x\n", "x.yaml")
    r = run("check", "--json", str(tmp_path))
    out = json.loads(r.stdout)
    assert r.returncode == 1 and out["ok"] is False
    assert {e["message"] for e in out["errors"]} >= {'missing required key "routes"'}


def test_check_with_no_files_fails(tmp_path):
    assert run("check", str(tmp_path)).returncode == 1


def test_simulate_christmas_with_urgent_choice_json():
    r = run("simulate", "--number", "+33143550101", "--at", "2026-12-25T10:00", "--digits", "2", "--json",
            "--dialplans", str(EXAMPLES))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "closure" and out["tier"] == "urgent" and out["reason"] == "urgence"
    assert out["at"] == "2026-12-25T10:00:00+01:00"
    assert any("congés de fin d'année" in w for w in out["why"])
    assert len(out["dialplan_version"]) == 12


def test_simulate_text_explains_the_holiday():
    r = run("simulate", "--number", "+33387000100", "--at", "2027-03-26T10:00", "--dialplans", str(EXAMPLES))
    assert r.returncode == 0
    assert "public holiday: Vendredi saint" in r.stdout and "holiday_message" in r.stdout


def test_simulate_notes_a_time_that_does_not_exist():
    r = run("simulate", "--number", "+33143550101", "--at", "2027-03-28T02:30", "--json", "--dialplans", str(EXAMPLES))
    assert "does not exist" in json.loads(r.stdout)["note"]


def test_simulate_bad_time_is_a_clear_error():
    r = run("simulate", "--number", "+33143550101", "--at", "Noël", "--dialplans", str(EXAMPLES))
    assert r.returncode == 2 and "not a date and time" in r.stderr


def test_calendar_json_shows_segments_holidays_and_rota_end():
    r = run("calendar", "--practice", "pediatrie-saint-denis", "--from", "2027-01-25", "--days", "14", "--json",
            "--dialplans", str(EXAMPLES))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    kinds = {w["kind"] for w in out["warnings"]}
    assert "rota_ends" in kinds and "no_on_call" in kinds
    assert out["segments"][0]["start"] == "2027-01-25T00:00:00+04:00"
    assert out["segments"][0]["status"] == "closure"  # congés d'été austral


def test_calendar_warns_about_gaps_and_silent_closures(tmp_path):
    text = dialplan_text(routes="  holiday: hangup",
                         calendar="  closures:\n    - {date: 2026-12-02, reason: formation}")
    write(tmp_path, text)
    r = run("calendar", "--practice", "test-practice", "--from", "2026-11-01", "--days", "45", "--dialplans", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "route 'holiday' (public holiday: Armistice) reaches no queue, no on-call and plays no message" in r.stdout
    assert "closure 'formation' has no message of its own" in r.stdout
    assert "public holiday 2026-11-11 (Armistice)" in r.stdout


def test_calendar_unknown_practice():
    r = run("calendar", "--practice", "nope", "--dialplans", str(EXAMPLES))
    assert r.returncode == 1 and "cabinet-dr-martin" in r.stderr


def rota_dialplan(tmp_path: Path, holidays: str = "") -> Path:
    """Weekday days and nights dr-a, weekends dr-b with the night after Sunday written as Monday's
    (so the morning after a holiday covered like a Sunday has nobody), backup dr-c (no phone)."""
    text = dialplan_text(routes="  holiday: {ivr: triage}", extra=f"""on_call:
  backup: dr-c
  weekly:
    - {{days: mon-fri, hours: "08:00-20:00", who: dr-a}}
    - {{days: mon-thu, hours: "20:00-08:00", who: dr-a}}
    - {{days: fri, hours: "20:00-24:00", who: dr-b}}
    - {{days: sat-sun, hours: "00:00-24:00", who: dr-b}}
    - {{days: mon, hours: "00:00-08:00", who: dr-b}}
{holidays}""")
    text = text.replace('  - {id: dr-a, name: Dr A, phone: "+33600000001"}',
                        '  - {id: dr-a, name: Dr A, phone: "+33600000001"}\n'
                        '  - {id: dr-b, name: Dr B, phone: "+33600000002"}\n'
                        '  - {id: dr-c, name: Dr C}')
    text = text.replace("        - {sms: dr-a}", "        - {sms: on_call}\n"
                        "    urgent:\n      steps:\n        - {sms: on_call}\n        - {call: backup, wait: 3m}")
    return write(tmp_path, text)


def test_simulate_names_who_each_tier_alerts_on_a_holiday_covered_like_a_sunday(tmp_path):
    rota_dialplan(tmp_path)
    r = run("simulate", "--number", "+33100000001", "--at", "2027-07-14T12:00", "--digits", "1", "--json",
            "--dialplans", str(tmp_path))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "holiday" and out["tier"] == "vital"
    assert out["on_call"]["who"] == "dr-b" and out["on_call"]["rule"] == "holiday"
    assert "Fête nationale" in out["on_call"]["detail"]
    alerts = {a["tier"]: a for a in out["alerts"]}
    assert alerts["vital"]["starts"] is True and alerts["urgent"]["starts"] is False
    assert [(s["channel"], s["target"], s["practitioner"], s["skipped"]) for s in alerts["urgent"]["steps"]] == [
        ("sms", "on_call", "dr-b", None), ("call", "backup", "dr-c", "practitioner dr-c has no phone")]
    assert "+336" not in r.stdout  # names, never the practitioners' numbers


def test_simulate_text_says_who_is_on_call_and_who_would_be_alerted(tmp_path):
    rota_dialplan(tmp_path)
    r = run("simulate", "--number", "+33100000001", "--at", "2027-07-15T03:00", "--dialplans", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "on call: nobody (no entry of the rota)" in r.stdout
    assert "tier 'vital': 1. sms on_call: skipped (nobody on call)" in r.stdout
    r = run("simulate", "--number", "+33100000001", "--at", "2027-07-13T22:00", "--dialplans", str(tmp_path))
    assert "on call: dr-a (Dr A), weekly pattern (tue) 20:00-08:00" in r.stdout
    assert "tier 'urgent': 1. sms on_call -> dr-a (Dr A); 2. call backup: skipped (practitioner dr-c has no phone)" in r.stdout


def test_calendar_warns_when_a_holiday_leaves_nobody_on_call_and_shows_who_is_on_call(tmp_path):
    rota_dialplan(tmp_path)
    r = run("calendar", "--practice", "test-practice", "--from", "2027-07-13", "--days", "3", "--json",
            "--dialplans", str(tmp_path))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    gaps = [(w["start"], w["end"]) for w in out["warnings"] if w["kind"] == "holiday_no_on_call"]
    assert gaps == [("2027-07-15T00:00:00+02:00", "2027-07-15T08:00:00+02:00")]  # the holiday's night
    on_call = [(s["start"][11:16], s["on_call"]["who"], s["on_call"]["rule"])
               for s in out["segments"] if s["start"].startswith("2027-07-14")]
    assert on_call == [("00:00", "dr-a", "weekly"), ("08:00", "dr-b", "holiday")]


def test_calendar_text_shows_the_holiday_hole_and_none_once_the_rota_covers_the_holiday(tmp_path):
    rota_dialplan(tmp_path)
    r = run("calendar", "--practice", "test-practice", "--from", "2027-07-13", "--days", "3", "--dialplans", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "on call: dr-b (public holiday (Fête nationale), covered like sun 00:00-24:00)" in r.stdout
    assert ("Thu 2027-07-15 00:00 -> Thu 2027-07-15 08:00: public holiday 2027-07-14 (Fête nationale): "
            "nobody is on call") in r.stdout
    covered = tmp_path / "covered"
    covered.mkdir()
    rota_dialplan(covered, holidays='  holidays:\n    - {hours: "08:00-20:00", who: dr-b}\n'
                                    '    - {hours: "20:00-08:00", who: dr-b}')
    r = run("calendar", "--practice", "test-practice", "--from", "2027-07-13", "--days", "3", "--dialplans", str(covered))
    assert r.returncode == 0, r.stderr
    assert "nobody is on call" not in r.stdout
