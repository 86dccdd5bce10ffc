"""A node as `callrouter serve` runs it, for the tests: the asyncio reactor, the events service,
an offer and a secretary state published once the reactor runs. SIGTERM stops it cleanly; the
test may also kill it outright to see the broker publish its last will.

    python -m tests.events.child_service HOST PORT NODE
"""

from __future__ import annotations

import logging
import sys

from twisted.internet import asyncioreactor


def main(host: str, port: int, node: str) -> None:
    asyncioreactor.install()
    from twisted.internet import reactor

    from callrouter.events import topics
    from callrouter.events.publisher import MqttPublisher
    from callrouter.events.service import EventsService
    from callrouter.events.settings import MqttSettings

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    publisher = MqttPublisher(MqttSettings(host=host, port=port, keepalive_s=5), node, clock=reactor)
    service = EventsService(publisher, reactor)

    def offer() -> None:
        publisher.publish(topics.screen_pop(node, "alice"), {"call_id": "child-call"}, qos=1)
        publisher.publish(topics.secretary_state(node, "alice"), {"state": "ringing"}, retain=True)

    reactor.callWhenRunning(service.startService)
    reactor.callWhenRunning(offer)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
