"""Dialplans for tests, written as YAML like an administrator would, and loaded by the real loader."""

from __future__ import annotations

import textwrap
from pathlib import Path

from callrouter.dialplan.loader import load_paths
from callrouter.domain.model import Dialplan
from callrouter.prompts import Catalogue

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "dialplans"

MINIMAL = """\
practice: {practice}
name: Cabinet de test
timezone: {timezone}
numbers: ["{number}"]
calendar:
  country: FR
{calendar}
hours:
{hours}
queues:
  general: {{label: Secrétariat}}
ivr:
  triage:
    prompt: triage_menu
    options:
      "1": {{reason: urgence vitale, tier: vital}}
      "3": {{reason: rendez-vous, queue: general}}
routes:
  open: {{ivr: triage}}
  closed: {{announce: closed_message}}
{routes}
escalation:
  tiers:
    vital:
      announce: call_15
      steps:
        - {{sms: dr-a}}
practitioners:
  - {{id: dr-a, name: Dr A, phone: "+33600000001"}}
{extra}
"""


def dialplan_text(practice: str = "test-practice", timezone: str = "Europe/Paris", number: str = "+33100000001",
                  calendar: str = "", hours: str = '  mon-fri: ["08:00-12:00", "14:00-18:00"]',
                  routes: str = "", extra: str = "") -> str:
    return MINIMAL.format(practice=practice, timezone=timezone, number=number, calendar=calendar,
                          hours=hours, routes=routes, extra=extra)


def write(tmp_path: Path, text: str, name: str = "practice.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_one(tmp_path: Path, text: str, name: str = "practice.yaml") -> Dialplan:
    result = load_paths([write(tmp_path, text, name)], Catalogue.load())
    assert not result.errors, "\n".join(map(str, result.errors))
    return result.dialplans[0]


def load_errors(tmp_path: Path, text: str, name: str = "practice.yaml") -> list:
    result = load_paths([write(tmp_path, text, name)], Catalogue.load())
    assert result.errors, "expected the dialplan to be refused"
    return result.errors


def examples() -> dict[str, Dialplan]:
    result = load_paths([EXAMPLES], Catalogue.load())
    assert not result.errors, "\n".join(map(str, result.errors))
    return {d.practice: d for d in result.dialplans}
