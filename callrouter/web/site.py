"""The twisted.web side: one leaf resource that snapshots the request and runs the router in a
thread pool (the store is blocking), and a Request class that caps the body size.

A request with the console's session cookie reaches the router as the same request with the
session's bearer (callrouter.web.sessions), or is refused 403 here when it changes something
without the session's CSRF token; the cookie is read on the pool thread (the session store is
blocking). The tree around the API (pages, assets, event stream) is in callrouter.web.pages."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import Any, Callable

from twisted.internet import threads
from twisted.python.threadpool import ThreadPool
from twisted.web import server
from twisted.web.resource import Resource

from callrouter.ports import Clock, UserView, utc_from_clock
from callrouter.web.http import ApiError, HttpRequest, HttpResponse, error_response
from callrouter.web.pages import ConsolePages, Root, SECURITY_HEADERS
from callrouter.web.router import Router
from callrouter.web.sessions import ConsoleSessions, CsrfRefused, NoSessionStore
from callrouter.web.sse import EventHub, EventStreamResource

logger = logging.getLogger(__name__)


class LimitedRequest(server.Request):
    """Stops buffering a body past `max_body` bytes; the API then answers 413."""

    max_body = 64 * 1024
    body_too_large = False
    _received = 0
    hsts: bytes | None = None  # the Strict-Transport-Security value, sent on every HTTPS answer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls = type(self)
        self.max_body, self.hsts = cls.max_body, cls.hsts  # this request's, whatever a reload does after

    def process(self) -> None:
        if self.hsts is not None and self.isSecure():
            self.setHeader(b"Strict-Transport-Security", self.hsts)
        super().process()

    def handleContentChunk(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self.max_body:
            self.body_too_large = True
            return
        super().handleContentChunk(data)


class ApiResource(Resource):
    isLeaf = True

    def __init__(self, router: Router, reactor: Any, pool: ThreadPool, clock: Clock,
                 sessions: ConsoleSessions) -> None:
        super().__init__()
        self._router = router
        self._reactor = reactor
        self._pool = pool
        self._clock = clock
        self._sessions = sessions

    def render(self, request: server.Request):
        snapshot = self._snapshot(request)
        finished = []
        request.notifyFinish().addBoth(finished.append)
        d = threads.deferToThreadPool(self._reactor, self._pool, self._handle, snapshot)
        d.addErrback(self._crashed)
        d.addCallback(self._write, request, finished)
        return server.NOT_DONE_YET

    def _handle(self, req: HttpRequest) -> HttpResponse:
        """On a pool thread: the session cookie read (the store is blocking), then the router."""
        try:
            headers = self._sessions.authorise(req.method, req.headers, req.now)
        except CsrfRefused:
            return error_response(ApiError(403, "csrf", "jeton CSRF absent ou invalide : rechargez la page"))
        return self._router.handle(replace(req, headers=headers))

    def _snapshot(self, request: server.Request) -> HttpRequest:
        request.content.seek(0)
        body = request.content.read()
        query = {k.decode("utf-8", "replace"): tuple(v.decode("utf-8", "replace") for v in vs)
                 for k, vs in request.args.items()}
        headers = {k.decode("latin-1").lower(): vs[-1].decode("latin-1")
                   for k, vs in request.requestHeaders.getAllRawHeaders()}
        return HttpRequest(
            method=request.method.decode("ascii", "replace"),
            path=request.path.decode("utf-8", "replace"),
            query=query, headers=headers, body=body,
            source=getattr(request.getClientAddress(), "host", "unknown"),
            now=utc_from_clock(self._clock),
            body_too_large=getattr(request, "body_too_large", False))

    @staticmethod
    def _crashed(failure) -> HttpResponse:
        logger.error("API dispatch failed: %s", failure.getErrorMessage())
        return error_response(ApiError(500, "internal", "internal error"))

    @staticmethod
    def _write(response: HttpResponse, request: server.Request, finished: list) -> None:
        if finished:  # the client went away
            return
        request.setResponseCode(response.status)
        request.setHeader(b"Content-Type", response.content_type.encode())
        request.setHeader(b"Cache-Control", b"no-store")
        for name, value in {**SECURITY_HEADERS, **response.headers}.items():
            request.setHeader(name.encode(), value.encode())
        request.write(response.body)
        request.finish()


@dataclass(frozen=True)
class ConsoleParts:
    """What the console adds to the site: its sessions, the event hub its streams are fed by, and
    how a stream's bearer is checked (blocking: ConsoleSessions.authenticate, which knows the
    sessions' bearers and asks the users for the others)."""

    sessions: ConsoleSessions
    hub: EventHub
    authenticate: Callable[[str, dt.datetime], UserView | None]


class _NoUsers:
    def authenticate(self, token: str, now: dt.datetime) -> None:
        return None

    def authenticate_token_id(self, token_id: int, now: dt.datetime) -> None:
        return None


def no_console() -> ConsoleParts:
    """A site whose pages nobody can sign in to (no session route): for API-only servers and tests."""
    return ConsoleParts(ConsoleSessions(NoSessionStore(), _NoUsers(), dt.timedelta(minutes=15)), EventHub(),
                        lambda token, now: None)


def follow_http(site: server.Site, max_body_bytes: int, hsts_max_age_s: int | None) -> None:
    """The settings reload: the next request to `site` (built by build_site) is capped at
    `max_body_bytes` and, over HTTPS, told `hsts_max_age_s`; a request already under way keeps
    the limits it started with."""
    site.requestFactory.max_body = max_body_bytes
    site.requestFactory.hsts = _hsts(hsts_max_age_s)


def _hsts(max_age_s: int | None) -> bytes | None:
    return None if max_age_s is None else f"max-age={max_age_s}".encode()


def build_site(router: Router, reactor: Any, pool: ThreadPool, clock: Clock, max_body_bytes: int,
               console: ConsoleParts | None = None, hsts_max_age_s: int | None = None,
               connect_src: tuple[str, ...] = ()) -> server.Site:
    """The site: /api/* to the router (bodies capped at `max_body_bytes`), /api/events to the
    event stream fed by the console's hub, the console's pages and assets (callrouter.web.pages).
    With `hsts_max_age_s`, every answer over HTTPS tells browsers to use nothing else. `connect_src`:
    the origins the console's page may connect to besides this server (the edge's WebSocket)."""
    console = console or no_console()
    sessions, hub, authenticate = console.sessions, console.hub, console.authenticate
    request_class = type("ApiRequest", (LimitedRequest,), {"max_body": max_body_bytes, "hsts": _hsts(hsts_max_age_s)})
    api = ApiResource(router, reactor, pool, clock, sessions)
    events = EventStreamResource(hub, sessions, authenticate, reactor, clock, SECURITY_HEADERS)
    root = Root(api, events, ConsolePages(sessions, clock, reactor, pool, connect_src))
    site = server.Site(root, requestFactory=request_class)
    site.displayTracebacks = False
    return site
