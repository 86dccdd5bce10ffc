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


def test_the_duty_contact_is_parsed_and_checked():
    s = parse_settings({"escalation": {"duty_contact": {"sms": "+33612345678", "email": "sup@example.org"}}},
                       environ={})
    assert (s.escalation.duty_contact.sms, s.escalation.duty_contact.email) == ("+33612345678", "sup@example.org")
    with pytest.raises(ConfigError) as err:
        parse_settings({"escalation": {"duty_contact": {"sms": "06 12", "email": "nobody"}}}, environ={})
    text = str(err.value)
    assert "escalation.duty_contact.sms: expected a number" in text
    assert "escalation.duty_contact.email: expected an e-mail address" in text
    with pytest.raises(ConfigError, match="escalation.duty_contact.fax: unknown key"):
        parse_settings({"escalation": {"duty_contact": {"fax": "x"}}}, environ={})
