"""The console's live updates: the controller's events as server-sent events (GET /api/events).

`EventHub` is a second sink of the EventNotifier (callrouter.events.notifier), beside the MQTT
publisher: it is given the same topics and payloads, in the same order, on the reactor thread, and
writes each one to the event streams allowed to see it:

- `screen_pop`: only to the secretary it names; `secretary` (her state): to her, and to the
  users who manage the team (supervisors: the wallboard);
- `call` (a call's state, the caller masked), `queue` and `task` (a callback task created or
  changed, without the number): to users covering the practice (every practice for the roles not
  limited to theirs); `escalation` (a chain changed, its end included: its id) likewise;
- `team` (the team's coverage, levels or pause reasons changed: its version): to every stream.

The kind comes from the topic layout documented in docs/events.md
(`callrouter/<node>/secretaries/<id>/state`, `.../screen-pop`, `.../calls/<id>/state`,
`.../queues/<practice>/<queue>`, `.../practices/<practice>/tasks`, `.../escalations/<practice>/changed`,
`.../team`); other topics (practice cards, exhausted escalations, status) are not streamed. The last state of each secretary is kept, as MQTT retains it, and sent first on every
new stream, so the page knows since when she is in it.

A stream is opened with the console's session cookie (or a bearer token), checked on a pool thread
(the stores are blocking); every `keepalive` seconds it gets a comment line, and it is closed when
its session has ended (signed out, inactivity), which the page sees as a lost connection. After a
restart of the service the page's EventSource reconnects by itself with the same cookie: the
session is in the database.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from twisted.internet import threads
from twisted.internet.task import LoopingCall
from twisted.web import server
from twisted.web.resource import Resource

from callrouter.ports import Clock, UserView, utc_from_clock
from callrouter.auth.permissions import allowed, practice_scope
from callrouter.web.sessions import ConsoleSessions, session_id_of

logger = logging.getLogger(__name__)

KEEPALIVE_S = 15.0


def event_kind(topic: str) -> str | None:
    """`screen_pop`, `secretary`, `call`, `queue`, `task`, `escalation`, `team`, `watch` (a
    practice's forwarding watch), or None for a topic the console does not stream."""
    parts = topic.split("/")
    if len(parts) == 3 and parts[2] == "team":
        return "team"
    if len(parts) == 5 and parts[2] == "escalations" and parts[4] == "changed":
        return "escalation"  # its end too: `exhausted` is for MQTT's subscribers
    if len(parts) == 5 and parts[2] == "secretaries":
        return {"state": "secretary", "screen-pop": "screen_pop"}.get(parts[4])
    if len(parts) == 5 and parts[2] == "calls" and parts[4] == "state":
        return "call"
    if len(parts) == 5 and parts[2] == "queues":
        return "queue"
    if len(parts) == 5 and parts[2] == "practices" and parts[4] == "tasks":
        return "task"
    if len(parts) == 5 and parts[2] == "practices" and parts[4] == "forwarding-watch":
        return "watch"
    return None


def frame(kind: str, payload: Mapping[str, Any]) -> bytes:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"event: {kind}\ndata: {data}\n\n".encode("utf-8")


@dataclass(eq=False)
class Stream:
    """One open event stream: whom it is for, and where to write."""

    secretary: str  # her username: the secretary id events name her by
    practices: frozenset[str] | None  # None: every practice
    write: Callable[[bytes], None]
    session_id: str | None = None
    close: Callable[[], None] = field(default=lambda: None)
    team: bool = False  # she manages the team: every secretary's state

    def sees(self, kind: str, payload: Mapping[str, Any]) -> bool:
        if kind == "team":
            return True
        if kind in ("screen_pop", "secretary"):
            return payload.get("secretary") == self.secretary or (kind == "secretary" and self.team)
        practice = payload.get("practice")
        return self.practices is None or practice in self.practices


class EventHub:
    """The notifier's second sink (the Publishes protocol), and the open streams it feeds."""

    def __init__(self) -> None:
        self.streams: list[Stream] = []
        self._last_state: dict[str, dict[str, Any]] = {}  # secretary -> her last state payload

    def publish(self, topic: str, payload: Mapping[str, Any] | None, retain: bool = False, qos: int = 0) -> None:
        kind = event_kind(topic)
        if kind is None or payload is None:
            return
        if kind == "secretary":
            self._last_state[str(payload.get("secretary"))] = dict(payload)
        data = frame(kind, payload)
        for stream in list(self.streams):
            if stream.sees(kind, payload):
                self.write(stream, data)

    def add(self, stream: Stream) -> None:
        self.streams.append(stream)
        self.write(stream, b"retry: 2000\n\n")
        last = self._last_state.get(stream.secretary)
        if last is not None:
            self.write(stream, frame("secretary", last))

    def remove(self, stream: Stream) -> None:
        if stream in self.streams:
            self.streams.remove(stream)

    def write(self, stream: Stream, data: bytes) -> None:
        try:
            stream.write(data)
        except Exception:
            logger.warning("event stream of %s dropped: write failed", stream.secretary)
            self.remove(stream)


class EventStreamResource(Resource):
    """GET /api/events: text/event-stream for the signed-in user."""

    isLeaf = True

    def __init__(self, hub: EventHub, sessions: ConsoleSessions, authenticate: Callable[..., UserView | None],
                 reactor: Any, clock: Clock, headers: Mapping[str, str], keepalive_s: float = KEEPALIVE_S) -> None:
        super().__init__()
        self._hub, self._sessions, self._authenticate = hub, sessions, authenticate
        self._reactor, self._clock, self._headers = reactor, clock, headers
        self._keepalive_s = keepalive_s

    def render_GET(self, request: server.Request):
        now = utc_from_clock(self._clock)
        raw = {k.decode("latin-1").lower(): vs[-1].decode("latin-1")
               for k, vs in request.requestHeaders.getAllRawHeaders()}
        session_id = session_id_of(raw) if "authorization" not in raw else None
        if "authorization" not in raw and session_id is None:
            return self._refuse(request)
        d = threads.deferToThreadPool(self._reactor, self._reactor.getThreadPool(), self._user, raw, now)
        d.addCallback(self._open, request, session_id)
        d.addErrback(lambda f: self._failed(f, request))
        return server.NOT_DONE_YET

    def _user(self, raw: Mapping[str, str], now: Any) -> UserView | None:
        """On a pool thread (the stores are blocking): who the cookie or the bearer token is."""
        headers = self._sessions.authorise("GET", raw, now)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._authenticate(token.strip(), now)

    def _refuse(self, request: server.Request, finish: bool = False):
        request.setResponseCode(401)
        request.setHeader(b"Content-Type", b"application/json")
        body = b'{"error": "unauthorized", "message": "sign in first"}\n'
        if not finish:
            return body
        request.write(body)
        request.finish()
        return None

    def _failed(self, failure, request: server.Request) -> None:
        logger.error("event stream not opened: %s", failure.getErrorMessage())
        request.setResponseCode(500)
        request.finish()

    def _open(self, user: UserView | None, request: server.Request, session_id: str | None) -> None:
        if user is None:
            self._refuse(request, finish=True)
            return
        request.setHeader(b"Content-Type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Accel-Buffering", b"no")
        for name, value in self._headers.items():
            request.setHeader(name.encode(), value.encode())
        stream = Stream(user.username, practice_scope(user.role, user.attrs), request.write, session_id,
                        close=request.finish, team=allowed(user.role, "secretaries", "manage", user.attrs)[0])
        beat = LoopingCall(self._beat, stream)
        beat.clock = self._clock

        def gone(_: Any) -> None:
            self._hub.remove(stream)
            if beat.running:
                beat.stop()

        request.notifyFinish().addBoth(gone)
        self._hub.add(stream)
        beat.start(self._keepalive_s, now=False)

    def _beat(self, stream: Stream) -> None:
        """A comment line keeps proxies from closing the stream; a stream whose session has ended
        is closed (the session is read on a pool thread)."""
        if stream.session_id is None:
            self._hub.write(stream, b": keepalive\n\n")
            return
        d = threads.deferToThreadPool(self._reactor, self._reactor.getThreadPool(), self._sessions.get,
                                      stream.session_id, utc_from_clock(self._clock), False)
        d.addCallback(lambda session: self._after_check(stream, session))
        d.addErrback(lambda f: logger.warning("event stream of %s: session not checked: %s",
                                              stream.secretary, f.getErrorMessage()))

    def _after_check(self, stream: Stream, session: Any) -> None:
        if stream not in self._hub.streams:
            return  # gone meanwhile
        if session is None:
            self._hub.remove(stream)
            stream.close()
            return
        self._hub.write(stream, b": keepalive\n\n")
