"""The `mqtt:` section of the daemon settings."""

from __future__ import annotations

import pytest

from callrouter.config import ConfigError, parse_settings
from callrouter.events.settings import MqttSettings


def test_defaults_point_at_the_local_broker():
    s = parse_settings({}).mqtt
    assert (s.enabled, s.host, s.port, s.client_id) == (True, "127.0.0.1", 1883, None)
    assert s.problems() == []


def test_a_full_section_is_read():
    s = parse_settings({"mqtt": {"host": "broker.lan", "port": 8883, "username": "node1", "password": "x",
                                 "client_id": "cr-node1", "keepalive_s": 20, "queue_max": 50,
                                 "reconnect_max_s": 10, "enabled": False}}).mqtt
    assert s == MqttSettings(enabled=False, host="broker.lan", port=8883, username="node1", password="x",
                             client_id="cr-node1", keepalive_s=20, queue_max=50, reconnect_max_s=10.0)


def test_wrong_types_and_unknown_keys_are_all_reported():
    with pytest.raises(ConfigError) as exc:
        parse_settings({"mqtt": {"port": "x", "hostname": "b", "queue_max": -1}})
    text = "; ".join(exc.value.problems)
    assert "mqtt.port" in text and "mqtt.hostname: unknown key" in text and "mqtt.queue_max" in text


def test_cross_checks():
    assert MqttSettings(port=70000).problems() == ["mqtt.port: 70000 is not a TCP port"]
    assert MqttSettings(password="x").problems() == ["mqtt.password given without mqtt.username"]
    assert MqttSettings(reconnect_min_s=5, reconnect_max_s=1).problems()
