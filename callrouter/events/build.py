"""The events part of the service tree, built from the settings (called by app.py only)."""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from prometheus_client import CollectorRegistry

from callrouter.events.notifier import EventNotifier, Publishes
from callrouter.events.publisher import MqttPublisher
from callrouter.events.service import EventsService
from callrouter.events.settings import MqttSettings

logger = logging.getLogger(__name__)


class NoPublisher:
    """Events switched off (`mqtt.enabled: false`): everything is dropped, silently."""

    def publish(self, topic: str, payload: Mapping[str, Any] | None, retain: bool = False, qos: int = 0) -> None:
        pass


def build_events(settings: MqttSettings, node: str, registry: CollectorRegistry, reactor: Any,
                 also: Sequence[Publishes] = ()) -> tuple[EventsService | None, EventNotifier]:
    """The service to add to the tree (None when events are off) and the notifier for the controller;
    `also`: sinks given every event besides MQTT (the console's event stream), even with MQTT off."""
    if not settings.enabled:
        logger.info("MQTT events are off (mqtt.enabled: false)")
        return None, EventNotifier(NoPublisher(), node, reactor, also)
    publisher = MqttPublisher(settings, node, registry, clock=reactor)
    return EventsService(publisher, reactor), EventNotifier(publisher, node, reactor, also)
