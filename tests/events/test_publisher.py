"""The publisher against real Mosquitto brokers, read back by a real subscriber.

The machine's broker (127.0.0.1:1883) for the normal path; our own mosquitto on a free port when
the test has to stop and restart the broker. Every wait is on a message or a state, with a
generous timeout; nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock

from callrouter.events import topics
from callrouter.events.publisher import MqttPublisher
from callrouter.events.settings import MqttSettings
from tests.events.brokers import wait_for_async
from tests.events.mqtt_support import Subscriber, body, clear_retained, run_async


def make_publisher(host: str, port: int, node: str, **overrides) -> tuple[MqttPublisher, CollectorRegistry]:
    registry = CollectorRegistry()
    settings = MqttSettings(host=host, port=port, reconnect_min_s=0.2, reconnect_max_s=1.0, **overrides)
    return MqttPublisher(settings, node, registry), registry


def sample(registry: CollectorRegistry, name: str, **labels) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_the_status_is_stamped_with_the_injected_clock(shared_broker, node):
    """The node's status says when, read from the clock it was given (the reactor in the daemon)."""
    host, port = shared_broker
    clock = Clock()
    clock.advance(1_780_000_000)

    async def scenario():
        settings = MqttSettings(host=host, port=port, reconnect_min_s=0.2, reconnect_max_s=1.0)
        publisher = MqttPublisher(settings, node, CollectorRegistry(), clock=clock)
        async with Subscriber(host, port, topics.status(node)) as live:
            publisher.start()
            online = await live.wait_for(lambda m: body(m)["status"] == "online", "status online")
            assert body(online)["at"] == "2026-05-28T20:26:40+00:00"
        await publisher.stop()
        await clear_retained(host, port, [topics.status(node)])

    run_async(scenario())


def test_screen_pop_and_retained_state_reach_subscribers_and_a_late_one_gets_the_state(shared_broker, node):
    host, port = shared_broker
    state_topic = topics.secretary_state(node, "alice")
    pop_topic = topics.screen_pop(node, "alice")

    async def scenario():
        publisher, registry = make_publisher(host, port, node)
        async with Subscriber(host, port, f"callrouter/{node}/#") as live:
            publisher.start()
            await live.wait_for(lambda m: m.topic.value == topics.status(node) and body(m)["status"] == "online",
                                "status online")
            publisher.publish(pop_topic, {"call_id": "c1", "caller": {"number": "+33612345678"}}, qos=1)
            publisher.publish(state_topic, {"state": "ringing", "call_id": "c1"}, retain=True)
            pop = await live.wait_for(lambda m: m.topic.value == pop_topic, "screen-pop")
            assert body(pop)["call_id"] == "c1" and pop.qos == 1
            await live.wait_for(lambda m: m.topic.value == state_topic, "secretary state")
        async with Subscriber(host, port, f"callrouter/{node}/#") as late:
            state = await late.wait_for(lambda m: m.topic.value == state_topic, "retained state for a late subscriber")
            assert state.retain and body(state) == {"state": "ringing", "call_id": "c1"}
            status = await late.wait_for(lambda m: m.topic.value == topics.status(node), "retained status")
            assert body(status)["status"] == "online"
            assert late.on(pop_topic) == []  # an offer is not retained: a late screen must not pop it
        await publisher.stop()
        assert not publisher.connected
        assert sample(registry, "callrouter_events_published_total") >= 3
        assert sample(registry, "callrouter_events_broker_connected") == 0
        async with Subscriber(host, port, topics.status(node)) as after:
            status = await after.wait_for(lambda m: True, "status after stop")
            assert body(status)["status"] == "offline" and body(status)["reason"] == "stopped"
        await clear_retained(host, port, [state_topic, topics.status(node)])

    return run_async(scenario())


def test_publish_returns_at_once_while_the_broker_is_down_and_state_is_restored_after_restart(own_broker, node):
    """The broker restarts without persistence: every retained topic's last value comes back."""
    host, port = own_broker.host, own_broker.port
    before = topics.practice_card(node, "cabinet")
    state = topics.secretary_state(node, "alice")
    queue = topics.queue(node, "cabinet", "general")

    async def scenario():
        publisher, registry = make_publisher(host, port, node)
        publisher.start()
        await wait_for_async(lambda: publisher.connected, what="first connection")
        publisher.publish(before, {"name": "Cabinet"}, retain=True)
        async with Subscriber(host, port, before) as sub:
            await sub.wait_for(lambda m: True, "card before the outage")
        own_broker.stop()
        await wait_for_async(lambda: not publisher.connected, what="the publisher to notice the outage")
        assert sample(registry, "callrouter_events_broker_connected") == 0
        assert publisher.publish(state, {"state": "ringing"}, retain=True) is None
        publisher.publish(state, {"state": "on_call"}, retain=True)  # the last value is what counts
        publisher.publish(queue, {"waiting": 2}, retain=True)
        publisher.publish(queue, None, retain=True)  # cleared while down: stays cleared
        publisher.publish(topics.call_state(node, "c1"), {"state": "queued"}, qos=0)  # at most once: gone
        assert sample(registry, "callrouter_events_dropped_total", reason="offline") == 1
        own_broker.start()
        await wait_for_async(lambda: publisher.connected, what="reconnection")
        async with Subscriber(host, port, f"callrouter/{node}/#") as late:
            got = await late.wait_for(lambda m: m.topic.value == state, "state published during the outage")
            assert body(got) == {"state": "on_call"}
            card = await late.wait_for(lambda m: m.topic.value == before, "state from before the outage")
            assert body(card) == {"name": "Cabinet"}
            await late.wait_for(lambda m: m.topic.value == topics.status(node) and body(m)["status"] == "online",
                                "online again")
            assert late.on(queue) == [] and len(late.on(state)) == 1
        async with Subscriber(host, port, state) as later:
            got = await later.wait_for(lambda m: True, "the state, retained by the broker")
            assert got.retain and body(got) == {"state": "on_call"}
        await publisher.stop()

    return run_async(scenario())


def test_qos1_messages_queued_during_an_outage_arrive_after_reconnect_oldest_dropped_beyond_the_bound(
        persistent_broker, node):
    """A persistent subscriber session survives the broker restart, so nothing depends on who
    reconnects first; with queue_max=3, the first of four offers is the one dropped."""
    host, port = persistent_broker.host, persistent_broker.port
    pop = topics.screen_pop(node, "alice")
    sub_id = f"sub-{node}"

    async def scenario():
        async with Subscriber(host, port, pop, identifier=sub_id, clean_session=False):
            pass  # the session (and its subscription) now lives in the broker
        publisher, registry = make_publisher(host, port, node, queue_max=3)
        publisher.start()
        await wait_for_async(lambda: publisher.connected, what="first connection")
        persistent_broker.stop()
        await wait_for_async(lambda: not publisher.connected, what="the publisher to notice the outage")
        for n in range(1, 5):
            publisher.publish(pop, {"call_id": f"c{n}"}, qos=1)
        assert sample(registry, "callrouter_events_dropped_total", reason="queue_full") == 1
        persistent_broker.start()
        await wait_for_async(lambda: publisher.connected, what="reconnection")
        async with Subscriber(host, port, pop, identifier=sub_id, clean_session=False) as sub:
            await sub.wait_for(lambda m: body(m)["call_id"] == "c4", "the last offer")
            assert [body(m)["call_id"] for m in sub.on(pop)] == ["c2", "c3", "c4"]
        await wait_for_async(lambda: sample(registry, "callrouter_events_pending") == 0, what="queue drained")
        await publisher.stop()

    return run_async(scenario())


def test_publish_never_raises_and_counts_what_it_cannot_send(node):
    """No loop, no broker, a payload that cannot be serialised: the caller never sees an error."""
    publisher, registry = make_publisher("127.0.0.1", 1, node)
    loop: dict = {}
    loop["self"] = loop  # a circular payload: json refuses it
    publisher.publish("callrouter/x/calls/c/state", loop, qos=1)
    publisher.publish("callrouter/x/calls/c/state", {"state": "ended"}, qos=0)  # not connected
    publisher.publish(topics.status(node), {"status": "x"}, retain=True, qos=1)
    assert sample(registry, "callrouter_events_dropped_total", reason="invalid") == 1
    assert sample(registry, "callrouter_events_dropped_total", reason="offline") == 1
    assert sample(registry, "callrouter_events_pending") == 1


def test_a_broker_that_never_answers_does_not_stop_the_publisher_from_stopping(node):
    """Nobody listens on the port: the task retries with backoff, and stop() still returns."""
    async def scenario():
        from tests.events.brokers import free_port

        publisher, registry = make_publisher("127.0.0.1", free_port(), node)
        publisher.start()
        await asyncio.sleep(0.5)
        publisher.publish(topics.screen_pop(node, "bob"), {"call_id": "c"}, qos=1)
        assert not publisher.connected
        await publisher.stop()
        assert sample(registry, "callrouter_events_pending") == 1

    return run_async(scenario())


def test_publish_from_another_thread_is_handed_to_the_loop(node):
    """The controller calls from the reactor thread; a store callback in a thread pool must not
    corrupt the queue, so its message goes through the loop."""
    import threading

    async def scenario():
        from tests.events.brokers import free_port

        publisher, registry = make_publisher("127.0.0.1", free_port(), node)
        publisher.start()
        worker = threading.Thread(target=publisher.publish,
                                  args=(topics.secretary_state(node, "alice"), {"state": "available"}, True, 1))
        worker.start()
        worker.join(timeout=30)
        await wait_for_async(lambda: sample(registry, "callrouter_events_pending") == 1, what="the message queued")
        await publisher.stop()

    return run_async(scenario())
