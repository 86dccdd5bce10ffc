from __future__ import annotations

import uuid

import pytest

from tests.events.brokers import SHARED, OwnBroker, port_open


@pytest.fixture
def shared_broker() -> tuple[str, int]:
    """The machine's Mosquitto: its absence fails the test (CI has it), never skips it."""
    assert port_open(*SHARED), "Mosquitto is not listening on 127.0.0.1:1883"
    return SHARED


@pytest.fixture
def own_broker(tmp_path):
    broker = OwnBroker(tmp_path)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def persistent_broker(tmp_path):
    broker = OwnBroker(tmp_path, persistence=True)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def node() -> str:
    """A node name of its own per test, so tests (and other runs on the shared broker) never mix."""
    return f"test-{uuid.uuid4().hex[:10]}"
