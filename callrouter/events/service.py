"""The publisher as a Twisted service, on the asyncio loop the asyncio reactor runs.

`callrouter serve` installs `twisted.internet.asyncioreactor`, which drives an asyncio loop and
sets it as the thread's current loop: aiomqtt's task runs on that loop, beside the reactor's own
work, and `stopService` hands Twisted a Deferred wrapping the publisher's clean stop. Under any
other reactor there is no loop to run aiomqtt on: the service says so and the events are dropped,
while calls are routed as usual.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed

from callrouter.events.publisher import MqttPublisher

logger = logging.getLogger(__name__)


class EventsService(Service):
    name = "events"

    def __init__(self, publisher: MqttPublisher, reactor: Any):
        self.publisher = publisher
        self.reactor = reactor
        self._running = False

    def startService(self) -> None:
        super().startService()
        loop = asyncio_loop(self.reactor)
        if loop is None:
            logger.error("MQTT events off: the reactor is %s, not the asyncio reactor", type(self.reactor).__name__)
            return
        self.publisher.start(loop)
        self._running = True
        logger.info("MQTT events to %s:%s as %s", self.publisher.settings.host, self.publisher.settings.port,
                    self.publisher.client_id)

    def stopService(self) -> Deferred:
        super().stopService()
        if not self._running:
            return succeed(None)
        self._running = False
        loop = asyncio_loop(self.reactor)
        return Deferred.fromFuture(asyncio.ensure_future(self.publisher.stop(), loop=loop))


def asyncio_loop(reactor: Any) -> asyncio.AbstractEventLoop | None:
    """The asyncio loop an asyncio reactor runs (it made it the thread's current loop), or None."""
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    if not isinstance(reactor, AsyncioSelectorReactor):
        return None
    return asyncio.get_event_loop()
