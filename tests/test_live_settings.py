"""The settings file read again: a good file's live changes go to the running parts, each once;
the rest is named with the unit to restart; a file with problems is refused whole, with the file,
the key path and the reason, and the running settings stay."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import yaml
from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock

from callrouter.config import ConfigError, load_settings, parse_settings
from callrouter.controller.alert_session import AlertSettings
from callrouter.controller.context import CallContext, NoEvents
from callrouter.controller.settings import ControllerSettings
from callrouter.live_settings import SettingsReload, running_parts
from callrouter.metrics import Metrics
from callrouter.watch.calls import CallSettings


class Recorded:
    """The running parts: each records the settings it was given."""

    def __init__(self) -> None:
        self.given: list[tuple[str, object]] = []
        self.audited: list[tuple] = []

    def parts(self):
        return {name: (lambda s, name=name: self.given.append((name, s)))
                for name in ("calls", "alerts", "media", "retention", "watch")}

    def audit(self, *entry) -> None:
        self.audited.append(entry)


@pytest.fixture
def setup(tmp_path):
    path = tmp_path / "callrouter.yaml"
    start = {"controller": {"ring_timeout_s": 20}, "mqtt": {"username": "cr", "password": "s3cret"}}
    path.write_text(yaml.safe_dump(start), encoding="utf-8")
    rec = Recorded()
    registry = CollectorRegistry()

    def make(whole=False, parts=None):
        return SettingsReload(path, load_settings(path, environ={}), parts or rec.parts(), rec.audit, registry, whole,
                              load=lambda p: load_settings(p, environ={}))

    return path, rec, registry, make


def write(path, data) -> None:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def count(registry, result) -> float:
    return registry.get_sample_value("callrouter_settings_reloads_total", {"result": result})


def test_a_good_file_applies_its_live_changes_and_names_the_rest(setup, caplog):
    path, rec, registry, make = setup
    reload = make()
    write(path, {"controller": {"ring_timeout_s": 8, "hold_prompt": "attente"}, "media": {"workers_min": 2},
                 "sip": {"udp_port": 5062}, "mqtt": {"username": "cr", "password": "n3w"}})
    with caplog.at_level(logging.INFO, logger="callrouter.live_settings"):
        outcome = reload.reload()
    assert outcome.result == "applied"
    assert [name for name, _ in rec.given] == ["calls", "media"]
    running = rec.given[0][1]
    assert running.controller.ring_timeout_s == 8.0 and running.media.workers_min == 2
    assert running.sip.udp_port == 5060 and running.mqtt.password == "s3cret"  # left as they run
    assert reload.running is running
    text = caplog.text
    assert "controller.ring_timeout_s 20.0 -> 8.0" in text
    assert "sip.udp_port needs a restart of callrouter-edge; left as it runs" in text
    assert "sip.udp_port, mqtt.password need a restart of callrouter; left as they run" in text
    assert "n3w" not in text and "s3cret" not in text
    (target, before, after, details), = rec.audited
    assert target == "settings" and details["file"] == str(path) and after == {"controller.ring_timeout_s": 8.0, "controller.hold_prompt": "attente",
                                             "media.workers_min": 2}
    assert before["controller.ring_timeout_s"] == 20.0
    assert details["restart"] == {"callrouter-edge": ["sip.udp_port"], "callrouter": ["sip.udp_port", "mqtt.password"]}
    assert "n3w" not in repr(rec.audited)
    assert count(registry, "applied") == 1
    assert registry.get_sample_value("callrouter_settings_restart_pending") == 2


def test_under_serve_the_restart_is_of_callrouter_serve_in_one_line(setup, caplog):
    path, rec, registry, make = setup
    reload = make(whole=True)
    write(path, {"controller": {"ring_timeout_s": 20}, "mqtt": {"username": "cr", "password": "s3cret"},
                 "sip": {"udp_port": 5062}, "http": {"port": 9001}})
    with caplog.at_level(logging.WARNING, logger="callrouter.live_settings"):
        reload.reload()
    lines = [r.getMessage() for r in caplog.records if "a restart of" in r.getMessage()]
    assert lines == ["settings: http.port, sip.udp_port need a restart of callrouter serve "
                     "(callrouter, callrouter-edge); left as they run"]
    assert rec.given == []


def test_a_file_with_problems_is_refused_whole_with_file_path_and_reason(setup, caplog):
    path, rec, registry, make = setup
    reload = make()
    before = reload.running
    write(path, {"controller": {"ring_timeout_s": "long", "hold_prompt": "x"}, "media": {"workers_mni": 2}})
    with caplog.at_level(logging.ERROR, logger="callrouter.live_settings"):
        outcome = reload.reload()
    assert outcome.result == "refused" and reload.running is before and rec.given == [] and rec.audited == []
    assert f"settings refused: {path}: controller.ring_timeout_s: expected a number >= 0, got 'long'" in caplog.text
    assert f"settings refused: {path}: media.workers_mni: unknown key" in caplog.text
    assert "the running settings stay" in caplog.text
    assert count(registry, "refused") == 1


def test_a_file_that_is_not_yaml_or_gone_is_refused(setup, caplog):
    path, rec, registry, make = setup
    reload = make()
    path.write_text("controller: {ring_timeout_s: [", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="callrouter.live_settings"):
        assert reload.reload().result == "refused"
    assert "not valid YAML" in caplog.text and "line 1" in caplog.text
    path.unlink()
    assert reload.reload().result == "refused"
    assert count(registry, "refused") == 2 and rec.given == []


def test_live_changes_that_do_not_hold_with_the_running_restart_values_are_refused(setup, caplog):
    """workers_max raised needs the edge's restart: a floor above the running ceiling is refused."""
    path, rec, registry, make = setup
    reload = make()
    write(path, {"media": {"workers_max": 100, "workers_min": 80}})
    with caplog.at_level(logging.ERROR, logger="callrouter.live_settings"):
        assert reload.reload().result == "refused"
    assert "workers_min must be at least 1 and at most workers_max (with the changes that need a restart" in caplog.text
    assert rec.given == [] and reload.running.media.workers_min == 1


def test_the_same_file_read_again_changes_nothing(setup):
    path, rec, registry, make = setup
    reload = make()
    assert reload.reload().result == "unchanged"
    assert rec.given == [] and rec.audited == [] and count(registry, "unchanged") == 1


def test_the_log_level_follows_the_file_and_falls_back_to_the_command_lines():
    root = logging.getLogger()
    before = root.level
    try:
        apply = running_parts({}, cli_level=logging.INFO)["logging"]
        apply(parse_settings({"log_level": "DEBUG"}, environ={}))
        assert root.level == logging.DEBUG
        apply(parse_settings({}, environ={}))
        assert root.level == logging.INFO
    finally:
        root.setLevel(before)


def test_an_unknown_log_level_is_a_problem_of_the_file():
    with pytest.raises(ConfigError) as err:
        parse_settings({"log_level": "verbose"}, environ={})
    assert err.value.problems == ["log_level: expected one of DEBUG, INFO, WARNING, ERROR, got 'verbose'"]


def test_a_new_outbound_trunk_goes_to_every_part_that_dials_out():
    """The calls' context, the alert calls and the watch's calls: none keeps the old trunk."""
    old = parse_settings({}, environ={})
    ctx = CallContext(Clock(), None, None, lambda name, practice: name, old.served_controller, Metrics(), NoEvents())
    parts = {"controller": SimpleNamespace(ctx=ctx), "desk": SimpleNamespace(settings=ControllerSettings()),
             "alerts": SimpleNamespace(settings=AlertSettings("127.0.0.1:5080", ring_timeout_s=30.0)),
             "watch_calls": SimpleNamespace(settings=CallSettings("127.0.0.1:5080", ("+33180000100",), "Test", 603))}
    new = parse_settings({"controller": {"outbound_trunk": "10.0.0.9:5060"}}, environ={})
    running_parts(parts)["trunk"](new)
    assert ctx.settings.outbound_trunk == "10.0.0.9:5060" and parts["desk"].settings.outbound_trunk == "10.0.0.9:5060"
    assert parts["alerts"].settings.outbound_trunk == "10.0.0.9:5060"
    assert parts["watch_calls"].settings.outbound_trunk == "10.0.0.9:5060"
    assert parts["watch_calls"].settings.callers == ("+33180000100",)  # the rest as it was


def test_a_part_failing_to_take_its_settings_is_said_and_the_others_still_take_theirs(setup, caplog):
    path, rec, registry, make = setup

    def broken(settings):
        raise RuntimeError("bug")

    reload = make(parts={**rec.parts(), "calls": broken})
    write(path, {"controller": {"ring_timeout_s": 8}, "mqtt": {"username": "cr", "password": "s3cret"},
                 "media": {"workers_min": 2}})
    with caplog.at_level(logging.ERROR, logger="callrouter.live_settings"):
        assert reload.reload().result == "applied"
    assert "controller.ring_timeout_s not applied (calls): restart callrouter to apply them" in caplog.text
    assert [name for name, _ in rec.given] == ["media"]
