"""Fetching on-call rotas published at a URL (iCalendar), for the daemon and for `calendar`.

The daemon fetches each practice's feed every `refresh` into var/ical/ (one file per practice and
URL), only after the copy parses and names known practitioners; the dialplan registry sees the new
file and reloads, so the feed's shifts go live like an edited dialplan. When the feed is down or
broken, the last good copy stays in force and the failure is logged (the URL's path and query
often hold a private token: only its host is logged).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from callrouter.dialplan.rotafeed import cache_path, host_of, shifts_from_ics
from callrouter.domain import ical
from callrouter.domain.model import Dialplan

logger = logging.getLogger(__name__)

TICK_SECONDS = 30.0
RETRY_SECONDS = 300.0  # after a failure, try again sooner than the usual refresh
TIMEOUT_SECONDS = 20.0


def check_feed(dialplan: Dialplan, content: bytes) -> str | None:
    """Why this copy of the dialplan's feed cannot be used, or None."""
    rota = dialplan.on_call
    _, problems = shifts_from_ics(content, dialplan.calendar.timezone, rota.feed.names, dialplan.practitioners)
    if problems:
        return f"line {problems[0].line}: {problems[0].message}" + (
            f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
    return None


def write_atomically(path: Path, content: bytes) -> bool:
    """Write unless the file holds it already; True if written."""
    try:
        if path.read_bytes() == content:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)
    return True


class RotaFeedService(Service):
    """Fetches the rota feeds of the dialplans in force, each at its own `refresh` interval."""

    name = "rota-feeds"

    def __init__(self, dialplans: Callable[[], Any], cache_dir: Path, reactor: Any,
                 tick_s: float = TICK_SECONDS) -> None:
        """`dialplans`: returns the practice -> Dialplan mapping in force (the registry's)."""
        self._dialplans = dialplans
        self._cache = Path(cache_dir)
        self._reactor = reactor
        self._agent = Agent(reactor)
        self._tick_s = tick_s
        self._due: dict[tuple[str, str], float] = {}
        self._busy: set[tuple[str, str]] = set()
        self._loop: task.LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        self._loop = task.LoopingCall(self.refresh_due)
        self._loop.clock = self._reactor
        self._loop.start(self._tick_s, now=True).addErrback(
            lambda f: logger.error("rota feed loop stopped: %s", f.getTraceback()))

    def stopService(self):
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def refresh_due(self) -> "defer.Deferred[None]":
        """Fetch every feed whose time has come; fires when they are all done."""
        now = self._reactor.seconds()
        work = []
        for practice, dialplan in list(self._dialplans().items()):
            rota = dialplan.on_call
            if rota is None or rota.feed is None or rota.feed.url is None:
                continue
            key = (practice, rota.feed.url)
            if key in self._busy or self._due.get(key, 0.0) > now:
                continue
            work.append(self.fetch(dialplan))
        return defer.DeferredList(work).addCallback(lambda _: None)

    def fetch(self, dialplan: Dialplan) -> "defer.Deferred[bool]":
        """Fetch one feed; fires True when a new good copy was stored."""
        feed = dialplan.on_call.feed
        key = (dialplan.practice, feed.url)
        self._busy.add(key)
        d = self._agent.request(b"GET", feed.url.encode(), Headers({b"User-Agent": [b"callrouter"],
                                                                   b"Accept": [b"text/calendar"]}))
        d.addTimeout(TIMEOUT_SECONDS, self._reactor)
        d.addCallback(self._body)
        d.addCallback(self._store, dialplan)
        d.addErrback(self._failed, dialplan)

        def done(result):
            self._busy.discard(key)
            ok = result is not False  # None: fetched, same content as the copy in force
            self._due[key] = self._reactor.seconds() + (feed.refresh_s if ok else min(feed.refresh_s, RETRY_SECONDS))
            return result is True
        return d.addBoth(done)

    @staticmethod
    def _body(response) -> "defer.Deferred[bytes]":
        if response.code != 200:
            raise FeedError(f"HTTP {response.code}")
        if response.length is not None and isinstance(response.length, int) and response.length > ical.MAX_BYTES:
            raise FeedError(f"larger than {ical.MAX_BYTES} bytes")
        return readBody(response)

    def _store(self, content: bytes, dialplan: Dialplan):
        problem = check_feed(dialplan, content)
        url = dialplan.on_call.feed.url
        if problem:
            raise FeedError(f"unusable content: {problem}")
        written = write_atomically(cache_path(self._cache, dialplan.practice, url), content)
        if written:
            logger.info("rota feed of %s (%s) updated", dialplan.practice, host_of(url))
        return True if written else None  # None: unchanged, still a success

    @staticmethod
    def _failed(failure, dialplan: Dialplan) -> bool:
        reason = failure.getErrorMessage() or failure.type.__name__
        logger.warning("rota feed of %s (%s) not refreshed, the last good copy stays in force: %s",
                       dialplan.practice, host_of(dialplan.on_call.feed.url), reason)
        return False


class FeedError(Exception):
    pass
