"""The controller's settings: `secretaries` names who answers which queue; `agents`, its old name,
still works with a warning at load."""

from __future__ import annotations

import logging

import pytest

from callrouter.config import ConfigError, parse_settings

TEAM = {"*": ["sip:sec1@127.0.0.1:5090"]}


def test_secretaries_is_the_name_of_who_answers_which_queue(caplog):
    with caplog.at_level(logging.WARNING):
        settings = parse_settings({"controller": {"secretaries": TEAM}})
    assert settings.controller.secretaries == {"*": ("sip:sec1@127.0.0.1:5090",)}
    assert "deprecated" not in caplog.text


def test_the_old_name_agents_still_works_with_a_warning_at_load(caplog):
    with caplog.at_level(logging.WARNING):
        settings = parse_settings({"controller": {"agents": TEAM}})
    assert settings.controller.secretaries == {"*": ("sip:sec1@127.0.0.1:5090",)}
    assert "controller.agents is deprecated: rename it controller.secretaries" in caplog.text


def test_both_names_at_once_is_a_problem_at_load():
    with pytest.raises(ConfigError, match="controller.agents: the old name of controller.secretaries"):
        parse_settings({"controller": {"agents": TEAM, "secretaries": TEAM}})
