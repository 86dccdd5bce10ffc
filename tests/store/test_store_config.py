"""Settings: strict parsing, every problem reported with its path, env override of the database."""

import pytest

from callrouter.config import ConfigError, DEFAULT_DATABASE_URL, load_settings, parse_settings


def test_defaults():
    s = parse_settings(None, environ={})
    assert s.database_url == DEFAULT_DATABASE_URL
    assert s.retention.call_records_days == 365


def test_values_are_read(tmp_path):
    path = tmp_path / "callrouter.yaml"
    path.write_text("database_url: postgresql+psycopg://u@h/db\n"
                    "http: {port: 9000}\nretention: {audit_days: null}\n")
    s = load_settings(path, environ={})
    assert (s.database_url, s.http.port, s.retention.audit_days) == (
        "postgresql+psycopg://u@h/db", 9000, None)


def test_environment_overrides_database_url():
    s = parse_settings({"database_url": "sqlite:///x.db"},
                       environ={"CALLROUTER_DATABASE_URL": "sqlite:///y.db"})
    assert s.database_url == "sqlite:///y.db"


def test_every_problem_is_reported_with_its_path():
    with pytest.raises(ConfigError) as err:
        parse_settings({"databse_url": "x", "http": {"port": "80"},
                        "retention": {"recordings_days": 0}, "auth": []}, "f.yaml", environ={})
    problems = err.value.problems
    assert any(p.startswith("databse_url: unknown key") for p in problems)
    assert "http.port: expected a whole number >= 0, got '80'" in problems
    assert any(p.startswith("retention.recordings_days: expected a positive integer or null")
               for p in problems)
    assert "auth: expected a mapping, got list" in problems
    assert str(err.value).startswith("f.yaml: ")


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)


def test_settings_are_frozen():
    s = parse_settings({}, environ={})
    with pytest.raises(Exception):
        s.database_url = "x"


def test_the_documented_example_settings_file_loads():
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "docs" / "callrouter.example.yaml"
    s = load_settings(example, environ={})
    assert s.retention.recordings_days == 90 and s.http.max_body_bytes == 65536
