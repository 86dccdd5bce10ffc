"""Routes: method + path pattern -> handler, with authentication and permission checks.

Every route but login requires a bearer token and states the permissions it needs; the check goes
through `callrouter.auth.permissions.allowed`, and a refusal is a 403 carrying its reason. The route
table is also what the OpenAPI document is tested against.

Path parameters are text unless the pattern types them: `{escalation_id:int}` matches only digits,
reaches the handler as an `int`, and a value outside `1..MAX_ID` (what an SQL INTEGER key holds on
both SQLite and PostgreSQL) is a 404 before any handler or database sees it. A path served for other
methods only is a 405 whose `Allow` header names them.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import unquote

from callrouter.auth.permissions import allowed, practice_scope
from callrouter.ports import Actor, UserView
from callrouter.web.http import (
    ApiError, BodySpec, HttpRequest, HttpResponse, QuerySpec, error_response, json_response,
)

logger = logging.getLogger(__name__)

MAX_ID = 2**31 - 1  # the largest SQL INTEGER (PostgreSQL's is 32-bit; SQLite's is wider)
_PLACEHOLDER = re.compile(r"\{(\w+)(?::(int))?\}")


@dataclass(frozen=True)
class Context:
    request: HttpRequest
    params: Mapping[str, Any]  # str, or int for a parameter typed `:int` in the pattern
    user: UserView | None
    token: str | None

    @property
    def now(self) -> dt.datetime:
        return self.request.now

    @property
    def actor(self) -> Actor:
        name = self.user.username if self.user else "anonymous"
        return Actor(name, self.request.source)


Handler = Callable[[Context], "HttpResponse | Any"]


def check_practice(ctx: Context, practice: str) -> None:
    """403 with the reason when the user's role limits her to practices that exclude `practice`."""
    scope = practice_scope(ctx.user.role, ctx.user.attrs)
    if scope is not None and practice not in scope:
        raise ApiError(403, "forbidden", f"practice {practice} is not one of yours",
                       reason="practice not covered by this user")


def filters(q: Mapping[str, Any]) -> dict[str, Any]:
    """A parsed query string as the audit trail keeps it (date-times in ISO 8601)."""
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in q.items()}


def check_visible(ctx: Context, practice: str, what: str) -> None:
    """404 "no such <what>" for a record of a practice the user does not cover: the same answer as a
    missing record, so other practices' records are not revealed to exist."""
    scope = practice_scope(ctx.user.role, ctx.user.attrs)
    if scope is not None and practice not in scope:
        raise ApiError(404, "not_found", f"no such {what}")


def guarded(api: Any, unavailable: str) -> Callable[[str], Handler]:
    """Handlers by method name of `api`, answering 503 `unavailable` when `api` is None (a part the
    server does not run): the routes exist either way, so the route table and its docs stay whole."""

    def h(name: str) -> Handler:
        def handler(ctx: Context):
            if api is None:
                raise ApiError(503, "unavailable", unavailable)
            return getattr(api, name)(ctx)
        return handler

    return h


@dataclass(frozen=True)
class Route:
    """`pattern` is given as `/api/x/{name}` or `/api/x/{name:int}`; it is kept as the documented
    template (`{name}`, as in docs/openapi.yaml), the typed names in `int_params`."""

    method: str
    pattern: str
    handler: Handler
    permissions: tuple[tuple[str, str], ...] = ()
    authenticated: bool = True
    body: BodySpec | None = None
    query: QuerySpec | None = None
    status: int = 200
    regex: re.Pattern = field(init=False, compare=False, repr=False)
    int_params: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        ints = frozenset(m.group(1) for m in _PLACEHOLDER.finditer(self.pattern) if m.group(2))
        regex = _PLACEHOLDER.sub(lambda m: rf"(?P<{m.group(1)}>[^/]+)", self.pattern)
        object.__setattr__(self, "pattern", _PLACEHOLDER.sub(r"{\1}", self.pattern))
        object.__setattr__(self, "regex", re.compile(f"^{regex}$"))
        object.__setattr__(self, "int_params", ints)

    def params(self, match: re.Match) -> dict[str, Any] | None:
        """The path parameters, typed; None when an `:int` one is not an id in 1..MAX_ID."""
        out: dict[str, Any] = {}
        for name, raw in match.groupdict().items():
            value = unquote(raw)
            if name in self.int_params:
                if not (value.isascii() and value.isdigit() and len(value) <= 10
                        and 1 <= int(value) <= MAX_ID):
                    return None
                out[name] = int(value)
            else:
                out[name] = value
        return out


class Router:
    def __init__(self, routes: list[Route], authenticate: Callable[[str, dt.datetime],
                                                                   UserView | None]) -> None:
        self.routes = routes
        self._authenticate = authenticate

    def handle(self, req: HttpRequest) -> HttpResponse:
        """Blocking: run from a thread pool."""
        try:
            return self._handle(req)
        except ApiError as err:
            return error_response(err)
        except Exception:
            logger.exception("error handling %s %s", req.method, req.path)
            return error_response(ApiError(500, "internal", "internal error; nothing was changed"))

    def _handle(self, req: HttpRequest) -> HttpResponse:
        route, params = self._match(req)
        user = token = None
        if route.authenticated:
            token = _bearer(req)
            user = self._authenticate(token, req.now) if token else None
            if user is None:
                raise ApiError(401, "unauthorized", "missing, invalid or expired bearer token")
            for module, action in route.permissions:
                ok, reason = allowed(user.role, module, action, user.attrs)
                if not ok:
                    raise ApiError(403, "forbidden", f"{module}:{action} refused: {reason}",
                                   reason=reason)
        result = route.handler(Context(req, params, user, token))
        if isinstance(result, HttpResponse):
            return result
        return json_response(result, route.status)

    def _match(self, req: HttpRequest) -> tuple[Route, dict[str, Any]]:
        methods = set()
        for route in self.routes:
            m = route.regex.match(req.path)
            if m is None:
                continue
            params = route.params(m)
            if params is None:
                continue
            if route.method == req.method:
                return route, params
            methods.add(route.method)
        if methods:
            allow = ", ".join(sorted(methods))
            raise ApiError(405, "method_not_allowed", f"{req.method} not allowed here; use {allow}",
                           headers={"Allow": allow})
        raise ApiError(404, "not_found", f"no such resource: {req.path}")


def _bearer(req: HttpRequest) -> str | None:
    scheme, _, token = req.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
