"""The events service in a process run like `callrouter serve` (asyncio reactor), against the
machine's broker: what it publishes arrives, a clean stop says offline, and a killed node is
declared offline by the broker itself (its last will)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from twisted.internet.task import Clock

from callrouter.events import topics
from callrouter.events.publisher import MqttPublisher
from callrouter.events.service import EventsService
from callrouter.events.settings import MqttSettings
from tests.events.mqtt_support import Subscriber, body, clear_retained, run_async

REPO = Path(__file__).resolve().parents[2]


def start_child(host: str, port: int, node: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.events.child_service", host, str(port), node],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_child(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.kill()
    _, err = proc.communicate(timeout=30)
    return err.decode(errors="replace")


def _run_child_then(shared_broker, node, end, check):
    host, port = shared_broker
    status = topics.status(node)
    state = topics.secretary_state(node, "alice")

    async def scenario():
        async with Subscriber(host, port, f"callrouter/{node}/#") as sub:
            proc = start_child(host, port, node)
            try:
                await sub.wait_for(lambda m: m.topic.value == status and body(m)["status"] == "online", "online")
                pop = await sub.wait_for(lambda m: m.topic.value == topics.screen_pop(node, "alice"), "screen-pop")
                await sub.wait_for(lambda m: m.topic.value == state, "secretary state")
                end(proc)
                last = await sub.wait_for(lambda m: m.topic.value == status and body(m)["status"] == "offline",
                                          "offline")
                check({"pop": body(pop), "offline": body(last)})
            finally:
                stop_child(proc)
                await clear_retained(host, port, [status, state])

    return run_async(scenario())


def test_a_node_under_the_asyncio_reactor_publishes_and_a_clean_stop_says_offline(shared_broker, node):
    def check(got):
        assert got["pop"] == {"call_id": "child-call"}
        assert got["offline"]["reason"] == "stopped" and got["offline"]["node"] == node

    return _run_child_then(shared_broker, node, lambda proc: proc.send_signal(signal.SIGTERM), check)


def test_a_killed_node_is_declared_offline_by_its_last_will(shared_broker, node):
    def check(got):
        assert got["offline"] == {"v": 1, "node": node, "status": "offline", "reason": "connection_lost"}

    return _run_child_then(shared_broker, node, lambda proc: proc.send_signal(signal.SIGKILL), check)


def test_under_another_reactor_the_service_stays_off_and_calls_are_unaffected(node, caplog):
    publisher = MqttPublisher(MqttSettings(), node)
    service = EventsService(publisher, Clock())
    service.startService()
    publisher.publish(topics.screen_pop(node, "alice"), {"call_id": "c"}, qos=1)
    d = service.stopService()
    assert d.called
    assert "not the asyncio reactor" in caplog.text
