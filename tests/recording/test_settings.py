"""The service's recording settings: defaults under var/, and limits no longer than the CNIL's."""

from __future__ import annotations

from pathlib import Path

import pytest

from callrouter.config import ConfigError, parse_settings


def test_defaults_live_under_var_and_keep_recordings_six_months():
    s = parse_settings({"var_dir": "/srv/cr"}).recording
    assert s.key_path(Path("/srv/cr")) == Path("/srv/cr/media.key")
    assert s.vault_path(Path("/srv/cr")) == Path("/srv/cr/vault")
    assert (s.keep_days, s.notes_days, s.voicemail_days) == (183, 365, 90)


def test_limits_longer_than_the_cnils_are_refused():
    with pytest.raises(ConfigError) as refused:
        parse_settings({"recording": {"keep_days": 400, "notes_days": 800, "max_call_s": 5}})
    text = str(refused.value)
    assert "recording.keep_days" in text and "six months" in text
    assert "recording.notes_days" in text and "recording.max_call_s" in text
    with pytest.raises(ConfigError) as unknown:
        parse_settings({"recording": {"keep_dayz": 10}})
    assert "recording.keep_dayz: unknown key" in str(unknown.value)
