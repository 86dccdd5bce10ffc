"""The MQTT publisher: the only code that publishes, and one that never blocks or fails a call.

`publish()` is synchronous and cheap: it serialises the payload and puts it in memory. A
background asyncio task (on the reactor's loop under `callrouter serve`, see service.py) connects
to the broker with aiomqtt, sends what is pending in order, and reconnects with backoff when the
broker is down or goes away. While it is away:

- retained state keeps only the last value per topic, and every retained topic's last value is
  published again on each (re)connection, so a broker restarted without persistence gets the
  current state back;
- non-retained QoS 1 messages are kept up to `queue_max`, the oldest dropped first (counted,
  logged); non-retained QoS 0 messages are dropped (at most once means just that).

A QoS 1 message leaves memory only when the broker acknowledged it, so a connection lost in the
middle re-sends it after reconnecting (at least once: consumers key on `call_id`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import ssl
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

import aiomqtt
from prometheus_client import CollectorRegistry, Counter, Gauge
from twisted.application.internet import backoffPolicy

from callrouter.events import topics
from callrouter.events.settings import MqttSettings
from callrouter.ports import Clock, utc_from_clock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class PublisherMetrics:
    def __init__(self, registry: CollectorRegistry | None):
        r = registry or CollectorRegistry()
        self.published = Counter("callrouter_events_published", "MQTT messages the broker accepted", registry=r)
        self.dropped = Counter("callrouter_events_dropped", "MQTT messages dropped before reaching the broker",
                               ["reason"], registry=r)
        self.connected = Gauge("callrouter_events_broker_connected", "1 while connected to the MQTT broker",
                               registry=r)
        self.pending = Gauge("callrouter_events_pending", "MQTT messages waiting to be sent", registry=r)


def encode(payload: Mapping[str, Any] | None) -> bytes:
    """JSON in UTF-8; None is the empty payload, which clears a retained topic."""
    if payload is None:
        return b""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """The client's TLS: the broker's certificate checked (chain and name), TLS 1.2 at least, and
    our certificate when configured. A file that cannot be read counts as a failed connection."""
    try:
        context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if settings.cert_file is not None:
            context.load_cert_chain(str(settings.cert_file), str(settings.key_file))
    except (OSError, ssl.SSLError) as exc:
        raise aiomqtt.MqttError(f"TLS files of the mqtt settings: {exc}") from None
    return context


class _SystemClock:
    """The wall clock, for a publisher run without a reactor (the daemon gives it the reactor)."""

    def seconds(self) -> float:
        return time.time()


class MqttPublisher:
    """Publishes for one node; `start()` on a running asyncio loop, `stop()` to leave cleanly."""

    def __init__(self, settings: MqttSettings, node: str, registry: CollectorRegistry | None = None,
                 clock: Clock | None = None):
        self.settings = settings
        self.node = node
        self.client_id = settings.client_id or f"callrouter-{topics.segment(node)}"
        self.status_topic = topics.status(node)
        self.metrics = PublisherMetrics(registry)
        self._clock = clock if clock is not None else _SystemClock()
        self._pending: OrderedDict[tuple[str, Any], Message] = OrderedDict()
        self._retained: dict[str, Message] = {}  # last value of every retained topic
        self._nonretained = 0
        self._seq = itertools.count()
        self._connected = False
        self._stopping = False
        self._stop_deadline = 0.0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._dropped_since_log = 0
        self._retry = backoffPolicy(settings.reconnect_min_s, settings.reconnect_max_s, 2.0,
                                    lambda: random.uniform(0, settings.reconnect_min_s))

    # --- the caller's side: never blocks, never raises ---------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    def publish(self, topic: str, payload: Mapping[str, Any] | None, retain: bool = False, qos: int = 0) -> None:
        """Queue one message. Retained: the last value per topic wins. None clears a retained topic.

        Meant for the reactor's thread; from another thread the message is handed to the loop."""
        try:
            msg = Message(topic, encode(payload), 1 if qos else 0, bool(retain))
            if self._loop is not None and threading.get_ident() != self._loop_thread:
                self._loop.call_soon_threadsafe(self._put, msg)  # from a thread pool: hop to the loop
            else:
                self._put(msg)
        except Exception:  # a bad payload is a bug, but never the caller's problem
            logger.exception("event on %s not published", topic)
            self.metrics.dropped.labels("invalid").inc()

    def _put(self, msg: Message) -> None:
        if msg.retain:
            if msg.topic not in self._retained and len(self._retained) >= self.settings.retained_max:
                logger.error("%d retained topics already: %s not kept", len(self._retained), msg.topic)
                self.metrics.dropped.labels("retained_full").inc()
                return
            if msg.payload:
                self._retained[msg.topic] = msg
            else:
                self._retained.pop(msg.topic, None)
            key: tuple[str, Any] = ("r", msg.topic)
            self._pending.pop(key, None)  # the newer value goes after what happened before it
            self._pending[key] = msg
        else:
            if not self._connected and msg.qos == 0:
                self.metrics.dropped.labels("offline").inc()
                return
            self._pending[("m", next(self._seq))] = msg
            self._nonretained += 1
            if self._nonretained > self.settings.queue_max:
                self._drop_oldest()
        self.metrics.pending.set(len(self._pending))
        if self._wake is not None:
            self._wake.set()

    def _drop_oldest(self) -> None:
        for key in self._pending:
            if key[0] == "m":
                del self._pending[key]
                self._nonretained -= 1
                self.metrics.dropped.labels("queue_full").inc()
                if self._dropped_since_log == 0:
                    logger.warning("MQTT queue full (%d): dropping the oldest events until the broker is back",
                                   self.settings.queue_max)
                self._dropped_since_log += 1
                return

    # --- the background task ------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Task:
        """Start the connection task on `loop` (default: the running loop); call it from the thread
        that runs that loop (the reactor's)."""
        loop = loop or asyncio.get_running_loop()
        self._loop, self._loop_thread = loop, threading.get_ident()
        self._stopping = False
        self._wake = asyncio.Event()
        self._task = loop.create_task(self.run(), name=f"mqtt-publisher-{self.node}")
        return self._task

    async def stop(self) -> None:
        """Send what is pending (for up to drain_on_stop_s), publish offline, disconnect."""
        self._stopping = True
        self._stop_deadline = asyncio.get_running_loop().time() + self.settings.drain_on_stop_s
        if self._wake is not None:
            self._wake.set()
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), self.settings.drain_on_stop_s + self.settings.timeout_s)
        except Exception:  # too slow (TimeoutError) or failed: stop it outright
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def run(self) -> None:
        """Connect, send, reconnect with backoff: until stop()."""
        if self._wake is None:
            self._wake = asyncio.Event()
        attempt = 0
        while not self._stopping:
            try:
                async with self._client() as client:
                    if attempt:
                        logger.info("MQTT broker %s:%s reachable again after %d attempt(s)",
                                    self.settings.host, self.settings.port, attempt)
                    attempt = 0
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                self._log_failure(attempt, exc)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("MQTT publisher error; reconnecting")
            finally:
                self._disconnected()
            if self._stopping:
                break
            delay = self._retry(attempt)
            attempt += 1
            await self._sleep(delay)

    def _client(self) -> aiomqtt.Client:
        s = self.settings
        will = aiomqtt.Will(self.status_topic, encode(self._status("offline", "connection_lost", stamped=False)),
                            qos=1, retain=True)
        return aiomqtt.Client(s.host, s.port, identifier=self.client_id, will=will, keepalive=s.keepalive_s,
                              timeout=s.timeout_s, username=s.username, password=s.password, clean_session=True,
                              tls_context=tls_context(s) if s.tls else None)

    async def _session(self, client: aiomqtt.Client) -> None:
        self._connected = True
        self.metrics.connected.set(1)
        if self._dropped_since_log:
            logger.warning("%d event(s) dropped while the MQTT broker was away", self._dropped_since_log)
            self._dropped_since_log = 0
        self._republish_state()
        watcher = asyncio.ensure_future(self._watch(client))
        sender = asyncio.ensure_future(self._send(client))
        try:
            done, _ = await asyncio.wait({watcher, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watcher, sender):
                task.cancel()
            await asyncio.gather(watcher, sender, return_exceptions=True)
            self._disconnected()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()

    def _republish_state(self) -> None:
        """Online first, then every retained topic's last value, ahead of the queued events."""
        state = [(("r", m.topic), m) for m in self._retained.values() if ("r", m.topic) not in self._pending]
        self._pending = OrderedDict([*state, *self._pending.items()])
        status = Message(self.status_topic, encode(self._status("online")), 1, True)
        self._pending[("r", self.status_topic)] = status
        self._pending.move_to_end(("r", self.status_topic), last=False)

    async def _watch(self, client: aiomqtt.Client) -> None:
        """Ends (with MqttError) when the connection is lost: aiomqtt reports it through messages."""
        async for _ in client.messages:
            pass

    async def _send(self, client: aiomqtt.Client) -> None:
        assert self._wake is not None
        while True:
            while self._pending and not self._out_of_time():
                key, msg = next(iter(self._pending.items()))
                await client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain,
                                     timeout=self.settings.timeout_s)
                if self._pending.get(key) is msg:
                    del self._pending[key]
                    if key[0] == "m":
                        self._nonretained -= 1
                self.metrics.published.inc()
                self.metrics.pending.set(len(self._pending))
            if self._stopping:
                if self._pending:
                    logger.warning("stopping with %d event(s) not sent", len(self._pending))
                await client.publish(self.status_topic, encode(self._status("offline", "stopped")), qos=1,
                                     retain=True, timeout=self.settings.timeout_s)
                return
            self._wake.clear()
            if not self._pending:
                await self._wake.wait()

    def _out_of_time(self) -> bool:
        return self._stopping and asyncio.get_running_loop().time() > self._stop_deadline

    def _disconnected(self) -> None:
        if self._connected and self._stopping:
            logger.info("MQTT publisher disconnected from %s:%s", self.settings.host, self.settings.port)
        elif self._connected:
            logger.warning("MQTT broker %s:%s connection lost; events are kept until it is back",
                           self.settings.host, self.settings.port)
        self._connected = False
        self.metrics.connected.set(0)
        for key in [k for k, m in self._pending.items() if k[0] == "m" and m.qos == 0]:
            del self._pending[key]
            self._nonretained -= 1
            self.metrics.dropped.labels("offline").inc()
        self.metrics.pending.set(len(self._pending))

    def _log_failure(self, attempt: int, exc: Exception) -> None:
        if attempt == 0:
            logger.warning("MQTT broker %s:%s: %s; reconnecting with backoff",
                           self.settings.host, self.settings.port, exc)
        else:
            logger.debug("MQTT broker still unreachable (attempt %d): %s", attempt, exc)

    async def _sleep(self, seconds: float) -> None:
        """Wait before reconnecting; stop() cuts it short."""
        assert self._wake is not None
        deadline = asyncio.get_running_loop().time() + seconds
        while not self._stopping:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _status(self, status: str, reason: str | None = None, stamped: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"v": 1, "node": self.node, "status": status}
        if reason:
            out["reason"] = reason
        if stamped:
            out["at"] = utc_from_clock(self._clock).isoformat(timespec="seconds")
        return out
