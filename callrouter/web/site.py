"""The twisted.web side: one leaf resource that snapshots the request and runs the router in a
thread pool (the store is blocking), and a Request class that caps the body size."""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import threads
from twisted.python.threadpool import ThreadPool
from twisted.web import server
from twisted.web.resource import Resource

from callrouter.ports import Clock, utc_from_clock
from callrouter.web.http import ApiError, HttpRequest, HttpResponse, error_response
from callrouter.web.router import Router

logger = logging.getLogger(__name__)


class LimitedRequest(server.Request):
    """Stops buffering a body past `max_body` bytes; the API then answers 413."""

    max_body = 64 * 1024
    body_too_large = False
    _received = 0

    def handleContentChunk(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self.max_body:
            self.body_too_large = True
            return
        super().handleContentChunk(data)


class ApiResource(Resource):
    isLeaf = True

    def __init__(self, router: Router, reactor: Any, pool: ThreadPool, clock: Clock) -> None:
        super().__init__()
        self._router = router
        self._reactor = reactor
        self._pool = pool
        self._clock = clock

    def render(self, request: server.Request):
        snapshot = self._snapshot(request)
        finished = []
        request.notifyFinish().addBoth(finished.append)
        d = threads.deferToThreadPool(self._reactor, self._pool, self._router.handle, snapshot)
        d.addErrback(self._crashed)
        d.addCallback(self._write, request, finished)
        return server.NOT_DONE_YET

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
        for name, value in response.headers.items():
            request.setHeader(name.encode(), value.encode())
        request.write(response.body)
        request.finish()


def build_site(router: Router, reactor: Any, pool: ThreadPool, clock: Clock,
               max_body_bytes: int) -> server.Site:
    """The API site: every path goes to the router, bodies capped at `max_body_bytes`."""
    request_class = type("ApiRequest", (LimitedRequest,), {"max_body": max_body_bytes})
    site = server.Site(ApiResource(router, reactor, pool, clock), requestFactory=request_class)
    site.displayTracebacks = False
    return site
