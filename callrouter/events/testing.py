"""A publisher that records instead of sending, for the tests of whoever publishes events.

Shipped in the package so the controller's tests can build a real `EventNotifier` on it and check
what a call published (topics, payloads, retain, QoS) without a broker.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple


class Sent(NamedTuple):
    topic: str
    payload: Mapping[str, Any] | None
    retain: bool
    qos: int


class RecordingPublisher:
    """Same `publish` signature as MqttPublisher (a test checks it)."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    def publish(self, topic: str, payload: Mapping[str, Any] | None, retain: bool = False, qos: int = 0) -> None:
        self.sent.append(Sent(topic, payload, retain, qos))

    def on(self, suffix: str) -> list[Sent]:
        """What was sent on topics ending with `suffix` (e.g. "/screen-pop", "/calls/c1/state")."""
        return [s for s in self.sent if s.topic.endswith(suffix)]

    def states(self, call_id: str) -> list[str]:
        """The successive states published for one call."""
        return [s.payload["state"] for s in self.sent
                if s.topic.endswith(f"/calls/{call_id}/state") and s.payload is not None]
