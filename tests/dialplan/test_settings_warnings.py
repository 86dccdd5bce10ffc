"""`check` and `calendar` warn when dialplans define escalation tiers that the settings switch off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from callrouter.dialplan.commands import escalation_disabled_warning, voice_calls_off_warning
from callrouter.dialplan.loader import load_paths
from tests.factories import EXAMPLES, REPO

CLI = [str(Path(sys.executable).with_name("callrouter"))]
CABINET = EXAMPLES / "cabinet-dr-martin-paris.yaml"


def run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CALLROUTER_CONFIG"}
    return subprocess.run([*CLI, *args], cwd=REPO, capture_output=True, text=True, timeout=60, env=env)


def enabled_config(tmp_path: Path) -> Path:
    path = tmp_path / "callrouter.yaml"
    path.write_text(f"escalation:\n  enabled: true\n  ack_secret: s3cret\n  outbox_file: {tmp_path / 'out.jsonl'}\n")
    return path


def test_the_warning_names_each_file_and_its_tiers_and_says_nobody_is_alerted():
    plans = load_paths([CABINET]).dialplans
    message = escalation_disabled_warning(plans, False, "callrouter.yaml")
    assert message.startswith("escalation is disabled in callrouter.yaml (escalation.enabled is false)")
    assert f"{CABINET} (cabinet-dr-martin): urgent, vital" in message
    assert "no practitioner is alerted" in message
    assert escalation_disabled_warning(plans, True, "x") is None
    assert escalation_disabled_warning([], False, "x") is None


def test_check_warns_with_the_default_settings_and_keeps_exit_code_zero():
    r = run("check", str(CABINET))
    assert r.returncode == 0, r.stderr
    assert "warning: escalation is disabled in the default settings" in r.stderr
    assert "1 valid, 0 invalid" in r.stdout


def test_check_is_quiet_when_the_config_enables_escalation(tmp_path):
    r = run("check", "--config", str(enabled_config(tmp_path)), str(CABINET))
    assert r.returncode == 0, r.stderr
    assert "escalation is disabled" not in r.stderr


def test_check_names_the_config_file_that_disables_escalation(tmp_path):
    config = tmp_path / "prod.yaml"
    config.write_text("escalation:\n  enabled: false\n")
    r = run("check", "--json", "--config", str(config), str(CABINET))
    assert r.returncode == 0
    [warning] = json.loads(r.stdout)["warnings"]
    assert warning.startswith(f"escalation is disabled in {config} ")


def test_an_unreadable_config_is_a_warning_not_a_failure(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("escalation:\n  enabeld: true\n")
    r = run("check", "--config", str(config), str(CABINET))
    assert r.returncode == 0
    assert f"warning: settings {config} cannot be read" in r.stderr and "enabeld" in r.stderr


def test_calendar_lists_the_warning_with_the_others(tmp_path):
    args = ("calendar", "--practice", "cabinet-dr-martin", "--from", "2026-12-01", "--days", "3",
            "--dialplans", str(EXAMPLES))
    r = run(*args, "--json")
    assert r.returncode == 0, r.stderr
    warnings = [w for w in json.loads(r.stdout)["warnings"] if w["kind"] == "settings"]
    assert len(warnings) == 1 and "escalation is disabled in the default settings" in warnings[0]["message"]
    assert "cabinet-dr-martin-paris.yaml" in warnings[0]["message"] and "msp-moselle" not in warnings[0]["message"]
    r = run(*args)
    assert r.returncode == 0 and "! escalation is disabled in the default settings" in r.stdout
    r = run(*args, "--config", str(enabled_config(tmp_path)))
    assert r.returncode == 0 and "escalation is disabled" not in r.stdout


def test_call_steps_while_voice_calls_are_off_are_said_to_go_out_as_sms(tmp_path):
    plans = [d for d in load_paths([EXAMPLES]).dialplans
             if any(s.channel == "call" for t in d.escalation.values() for s in t.steps)]
    assert plans, "an example practice has call steps"
    message = voice_calls_off_warning(plans, True, "prod.yaml")
    assert message.startswith("voice calls are off in prod.yaml (escalation.voice_calls is false)")
    assert "sent as SMS instead" in message and str(plans[0].source) in message
    assert voice_calls_off_warning(plans, False, "x") is None
    r = run("check", "--config", str(enabled_config(tmp_path)), str(plans[0].source))
    assert r.returncode == 0 and "voice calls are off" in r.stderr


def test_queues_sharing_a_line_must_agree_on_strategy_and_priority():
    import dataclasses

    from callrouter.dialplan.commands import shared_line_warnings

    plans = load_paths([EXAMPLES]).dialplans[:2]
    a, b = plans

    def shared(d, **kw):
        q = d.queues["general"]
        return dataclasses.replace(d, queues={**d.queues, "general": dataclasses.replace(q, shared="nord", **kw)})

    assert shared_line_warnings([shared(a), shared(b)]) == []
    [warning] = shared_line_warnings([shared(a, strategy="ring_all"), shared(b)])
    assert warning.startswith("shared line 'nord': its queues do not agree on strategy")
    assert f"({a.practice}/general): ring_all" in warning and f"({b.practice}/general): longest_idle" in warning
