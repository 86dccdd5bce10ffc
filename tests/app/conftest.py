"""`callrouter serve` run as a user runs it, on free loopback ports, with a test practice."""

from __future__ import annotations

import subprocess

import pytest

from callrouter.devtools.serve import CLI, ServeProcess, base_config, free_udp_port
from tests.app.browser import launched
from tests.factories import REPO

NUMBER = "+33100000042"

DIALPLAN = """\
practice: e2e-test
name: Cabinet Essai
timezone: Europe/Paris
numbers: ["{number}"]
hours:
  daily: ["00:00-24:00"]
queues:
  general: {{label: Secrétariat, wrap_up: 1s, announce_interval: 30s}}
ivr:
  triage:
    prompt: triage_menu
    timeout: 2s
    retries: 0
    on_timeout: {{queue: general}}
    options:
      "1": {{reason: urgence vitale, tier: vital}}
      "3": {{reason: rendez-vous, queue: general}}
      "4": {{reason: message, voicemail: true}}
routes:
  open: {{ivr: triage}}
  closed: {{ivr: triage}}
  holiday: {{ivr: triage}}
  overflow: {{wait_max: 60s, queue_max: 5, then: {{voicemail: true}}}}
escalation:
  tiers:
    vital:
      announce: call_15
      steps:
        - {{sms: dr-a}}
practitioners:
  - {{id: dr-a, name: Dr A, phone: "+33600000001"}}
"""


@pytest.fixture(scope="session")
def prompts_built():
    subprocess.run([CLI, "prompts", "build"], cwd=REPO, check=True, capture_output=True, timeout=300)


@pytest.fixture
def service(tmp_path, prompts_built):
    (tmp_path / "dialplans").mkdir()
    (tmp_path / "dialplans" / "e2e.yaml").write_text(DIALPLAN.format(number=NUMBER))
    secretary_port = free_udp_port()
    config = base_config(tmp_path, tmp_path / "dialplans", REPO / "prompts", workers=2,
                         agents={"*": [f"sip:secretary@127.0.0.1:{secretary_port}"]})
    svc = ServeProcess(tmp_path, config).start()
    svc.secretary_port = secretary_port
    try:
        yield svc
    finally:
        stray = svc.stop()
        assert not stray, f"processes left running after stop: {stray}"


@pytest.fixture(scope="module")
def browser():
    """One headless chromium per test module (tests/app/browser.py)."""
    yield from launched()
