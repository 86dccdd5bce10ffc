"""The HTTP server's tree: the console's pages and assets, the event stream, and the API.

Every asset is a file of the package (callrouter/web/static/): plain HTML, CSS and ES modules, no
build step, no CDN, so the console works offline on the practice's LAN. Every answer carries a
strict Content-Security-Policy: scripts, styles, connections and audio (voicemail messages,
recordings) only from this server, no inline script or style, images from here or data: URIs (the
TOTP QR code), never framed.

    /                    -> 302 /console
    /console             the console (302 to the sign-in page without a live session)
    /console/connexion   the sign-in page
    /wallboard           the supervisors' wallboard (302 to the sign-in page without a live session)
    /static/<file>       assets
    /api/events          server-sent events (callrouter.web.sse)
    anything else        the API (callrouter.web.site.ApiResource): /api/..., /ack/<token>...
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any, Mapping

from twisted.internet import threads
from twisted.python.threadpool import ThreadPool
from twisted.web import server
from twisted.web.resource import Resource

from callrouter.ports import Clock, utc_from_clock
from callrouter.web.sessions import ConsoleSessions, session_id_of

logger = logging.getLogger(__name__)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml", ".ico": "image/x-icon"}
STATIC = resources.files("callrouter.web") / "static"


def secure(request: server.Request, csp: str = CSP) -> None:
    for name, value in SECURITY_HEADERS.items():
        request.setHeader(name.encode(), value.encode())
    request.setHeader(b"Content-Security-Policy", csp.encode())


def csp_connecting_to(origins: tuple[str, ...]) -> str:
    """The policy with `origins` (validated: wss://*:port only) allowed for connections."""
    for origin in origins:
        if not origin.startswith("wss://*:") or not origin[8:].isdigit():
            raise ValueError(f"not a wss://*:port origin: {origin!r}")
    return CSP.replace("connect-src 'self'", " ".join(("connect-src 'self'", *origins)))


def _asset(name: str) -> tuple[bytes, str] | None:
    if "/" in name or name.startswith(".") or not name:
        return None
    suffix = name[name.rfind("."):] if "." in name else ""
    path = STATIC / name
    if suffix not in TYPES or not path.is_file():
        return None
    return path.read_bytes(), TYPES[suffix]


class StaticResource(Resource):
    isLeaf = True

    def render_GET(self, request: server.Request) -> bytes:
        secure(request)
        name = "/".join(p.decode("utf-8", "replace") for p in request.postpath)
        found = _asset(name)
        if found is None:
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return "Fichier introuvable.\n".encode()
        body, ctype = found
        request.setHeader(b"Content-Type", ctype.encode())
        request.setHeader(b"Cache-Control", b"no-cache")
        return body


class ConsolePages(Resource):
    """/console, /console/connexion and /wallboard (its data is refused by the API to anyone
    without the `team` permission; the page then says so)."""

    isLeaf = True

    def __init__(self, sessions: ConsoleSessions, clock: Clock, reactor: Any, pool: ThreadPool,
                 connect_src: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._sessions, self._clock, self._reactor, self._pool = sessions, clock, reactor, pool
        self._csp = csp_connecting_to(connect_src)

    def render_GET(self, request: server.Request):
        secure(request, self._csp)
        request.setHeader(b"Cache-Control", b"no-store")
        page = "/".join(p.decode("utf-8", "replace") for p in request.postpath).strip("/")
        wallboard = request.prepath[:1] == [b"wallboard"]
        if page == "connexion" and not wallboard:
            return self._page(request, "signin.html")
        if page:
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return "Page introuvable.\n".encode()
        cookie = request.getHeader(b"cookie")
        session_id = session_id_of({"cookie": cookie.decode("latin-1")} if cookie else {})
        if session_id is None:
            return self._redirect(request, b"/console/connexion")
        # The session store is blocking: read on a pool thread, answered back on the reactor.
        gone: list = []
        request.notifyFinish().addBoth(gone.append)
        d = threads.deferToThreadPool(self._reactor, self._pool, self._sessions.get, session_id,
                                      utc_from_clock(self._clock))
        d.addCallback(self._answer, request, "wallboard.html" if wallboard else "console.html", gone)
        d.addErrback(self._failed, request, gone)
        return server.NOT_DONE_YET

    def _answer(self, session: Any, request: server.Request, page: str, gone: list) -> None:
        if gone:  # the browser went away meanwhile
            return
        body = self._redirect(request, b"/console/connexion") if session is None else self._page(request, page)
        request.write(body)
        request.finish()

    @staticmethod
    def _failed(failure: Any, request: server.Request, gone: list) -> None:
        logger.error("page not served: %s", failure.getErrorMessage())
        if gone:
            return
        request.setResponseCode(503)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        request.write("Service momentanément indisponible : réessayez dans un instant.\n".encode())
        request.finish()

    @staticmethod
    def _page(request: server.Request, name: str) -> bytes:
        body, ctype = _asset(name)
        request.setHeader(b"Content-Type", ctype.encode())
        return body

    @staticmethod
    def _redirect(request: server.Request, to: bytes) -> bytes:
        request.setResponseCode(302)
        request.setHeader(b"Location", to)
        return b""


class Root(Resource):
    """Dispatches on the first path segment; the API resource sees the whole path."""

    def __init__(self, api: Resource, events: Resource, pages: Resource) -> None:
        super().__init__()
        self._api, self._events, self._pages = api, events, pages
        self._static = StaticResource()

    def getChild(self, path: bytes, request: server.Request) -> Resource:
        if path == b"api":
            return self._events if request.path == b"/api/events" else self._api
        if path in (b"console", b"wallboard"):
            return self._pages
        if path == b"static":
            return self._static
        if path == b"" and request.path == b"/":
            return _Redirect(b"/console")
        return self._api  # the API's other paths (/ack/<token>, webhooks) and its 404s

    def render(self, request: server.Request) -> Any:  # pragma: no cover - "/" goes to getChild
        return _Redirect(b"/console").render(request)


class _Redirect(Resource):
    isLeaf = True

    def __init__(self, to: bytes) -> None:
        super().__init__()
        self._to = to

    def render(self, request: server.Request) -> bytes:
        secure(request)
        request.setResponseCode(302)
        request.setHeader(b"Location", self._to)
        return b""
