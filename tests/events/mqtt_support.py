"""A real MQTT subscriber for the tests, and a runner for asyncio tests under any Twisted reactor."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

import aiomqtt

TIMEOUT = 30.0


def run_async(coro, timeout: float = 120.0) -> Any:
    """Run a test's coroutine, bounded; the test returns what this returns.

    pytest-twisted runs each test inside the reactor. Under its asyncio reactor
    (`--reactor=asyncio`, as `callrouter serve` runs) the coroutine runs on the reactor's own loop
    and the test returns the Deferred; under any other reactor it runs to completion on a fresh
    asyncio loop and the test returns None.
    """
    from twisted.internet import reactor
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor
    from twisted.internet.defer import Deferred

    bounded = asyncio.wait_for(coro, timeout)
    if isinstance(reactor, AsyncioSelectorReactor):
        return Deferred.fromFuture(asyncio.ensure_future(bounded))
    asyncio.run(bounded)
    return None


def body(message: aiomqtt.Message) -> Any:
    return json.loads(message.payload) if message.payload else None


class Subscriber:
    """Collects every message on `topic` from the moment it is subscribed."""

    def __init__(self, host: str, port: int, topic: str, identifier: str | None = None,
                 clean_session: bool = True):
        self.client = aiomqtt.Client(host, port, identifier=identifier, clean_session=clean_session)
        self.topic = topic
        self.messages: list[aiomqtt.Message] = []
        self._task: asyncio.Task | None = None
        self._arrived = asyncio.Event()

    async def __aenter__(self) -> "Subscriber":
        await self.client.__aenter__()
        await self.client.subscribe(self.topic, qos=1)
        self._task = asyncio.ensure_future(self._collect())
        return self

    async def __aexit__(self, *exc) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.__aexit__(None, None, None)

    async def _collect(self) -> None:
        async for message in self.client.messages:
            self.messages.append(message)
            self._arrived.set()

    def on(self, topic: str) -> list[aiomqtt.Message]:
        return [m for m in self.messages if m.topic.value == topic]

    async def wait_for(self, predicate: Callable[[aiomqtt.Message], bool], what: str,
                       timeout: float = TIMEOUT) -> aiomqtt.Message:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for m in self.messages:
                if predicate(m):
                    return m
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [(m.topic.value, m.payload[:80]) for m in self.messages]
                raise AssertionError(f"timed out waiting for {what}; got {seen}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass


async def clear_retained(host: str, port: int, topics: list[str]) -> None:
    """Leave the shared broker as we found it."""
    async with aiomqtt.Client(host, port) as client:
        for topic in topics:
            await client.publish(topic, b"", qos=1, retain=True)
