"""The `escalation:` settings section is parsed strictly, with cross-checks."""

from pathlib import Path

import pytest

from callrouter.config import ConfigError, parse_settings


def test_escalation_section_is_parsed():
    s = parse_settings({"escalation": {"enabled": True, "ack_secret": "k", "outbox_file": "var/outbox.jsonl",
                                       "smtp_port": 2525}}, environ={})
    assert s.escalation.outbox_file == Path("var/outbox.jsonl") and s.escalation.smtp_port == 2525


def test_enabled_without_secret_or_channel_is_refused_with_every_problem():
    with pytest.raises(ConfigError) as err:
        parse_settings({"escalation": {"enabled": True, "sms_format": "xml"}}, environ={})
    text = str(err.value)
    assert "escalation.ack_secret: required" in text and "sms_format" in text and "no channel" in text
