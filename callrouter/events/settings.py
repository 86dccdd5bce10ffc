"""Settings of the MQTT event publisher (the `mqtt:` section of the daemon settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MqttSettings:
    """Where the broker is and how much the publisher keeps while it cannot reach it.

    `keepalive_s` bounds how long the broker takes to notice a dead node (about 1.5 times it)
    and publish its last will (`callrouter/{node}/status` = offline). `queue_max` bounds the
    non-retained QoS 1 messages kept while the broker is away (the oldest are dropped first);
    retained state is kept as the last value per topic, at most `retained_max` topics.

    `tls` connects over TLS (port 8883 by convention), checking the broker's certificate against
    `ca_file` (default: the system's authorities) and its name against `host`; `cert_file` and
    `key_file` present a client certificate (deploy/mosquitto/ asks for one). The files are read
    at each connection, so a renewed certificate is used from the next one.
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    client_id: str | None = None  # default: callrouter-{node}
    keepalive_s: int = 15
    timeout_s: float = 10.0  # a publish not acknowledged within this counts as a lost connection
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    queue_max: int = 1000
    retained_max: int = 10000
    drain_on_stop_s: float = 2.0  # at shutdown, time given to send what is still queued
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def problems(self) -> list[str]:
        out = []
        if not 1 <= self.port <= 65535:
            out.append(f"mqtt.port: {self.port} is not a TCP port")
        if self.keepalive_s < 5:
            out.append("mqtt.keepalive_s: at least 5 seconds")
        if self.reconnect_min_s <= 0 or self.reconnect_max_s < self.reconnect_min_s:
            out.append("mqtt.reconnect_min_s must be > 0 and <= reconnect_max_s")
        if self.queue_max < 1 or self.retained_max < 1:
            out.append("mqtt.queue_max and mqtt.retained_max: at least 1")
        if self.password is not None and self.username is None:
            out.append("mqtt.password given without mqtt.username")
        if (self.cert_file is None) != (self.key_file is None):
            out.append("mqtt.cert_file and mqtt.key_file: give both (a client certificate) or neither")
        if not self.tls and (self.ca_file or self.cert_file):
            out.append("mqtt.ca_file, mqtt.cert_file and mqtt.key_file need mqtt.tls: true")
        return out
