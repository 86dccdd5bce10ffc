"""Plain HTTP values and strict input parsing, independent of Twisted so handlers run in threads.

Every refusal is an `ApiError` carrying the status and a message meant for the API user.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Mapping, TypeVar

T = TypeVar("T")


class Live(Generic[T]):
    """A setting the settings reload (SIGHUP) may change while the server runs, read at each use
    (`value`, or the call): `follow` swaps the one reference, so a pool thread reads the old value
    or the new one, never a mix."""

    def __init__(self, value: T) -> None:
        self.value = value

    def __call__(self) -> T:
        return self.value

    def follow(self, value: T) -> None:
        self.value = value


def current(value: "T | Callable[[], T]") -> T:
    """A setting given as its value (fixed) or as what reads it at use (a Live)."""
    return value() if callable(value) else value


class ApiError(Exception):
    """`extra` goes into the JSON body; `headers` into the response (a 405's `Allow`)."""

    def __init__(self, status: int, error: str, message: str, *,
                 headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict:
        return {"error": self.error, "message": self.message, **self.extra}


@dataclass(frozen=True)
class HttpRequest:
    """A snapshot of a request, taken on the reactor thread, safe to hand to a worker thread."""

    method: str
    path: str
    query: Mapping[str, tuple[str, ...]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    source: str
    now: dt.datetime
    body_too_large: bool = False


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


def json_response(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, json.dumps(data, ensure_ascii=False).encode() + b"\n")


def error_response(err: ApiError) -> HttpResponse:
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else {}
    headers.update(err.headers)
    return HttpResponse(err.status, json.dumps(err.body()).encode() + b"\n", headers=headers)


# --- JSON bodies ------------------------------------------------------------------------------

JSON_TYPES = {str: "string", bool: "boolean", list: "array", int: "integer", dict: "object"}


@dataclass(frozen=True)
class Field:
    """One body field: its JSON type, whether required, and limits."""

    type: type
    required: bool = True
    max_length: int = 200
    items: type | None = None  # element type of a list
    choices: tuple[str, ...] | None = None


BodySpec = Mapping[str, Field]


def parse_body(req: HttpRequest, spec: BodySpec) -> dict[str, Any]:
    """The body as a dict checked against `spec`: every problem reported at once."""
    if req.body_too_large:
        raise ApiError(413, "body_too_large", "request body is larger than the server accepts")
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        data = json.loads(req.body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_json", "body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        message = f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise ApiError(400, "malformed_json", message) from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "body must be a JSON object")
    problems = []
    unknown = sorted(set(data) - set(spec))
    if unknown:
        problems.append(f"unknown field(s): {', '.join(unknown)}; "
                        f"expected: {', '.join(sorted(spec))}")
    for name, f in spec.items():
        if name not in data:
            if f.required:
                problems.append(f"field '{name}' is required")
            continue
        problem = _check_field(name, data[name], f)
        if problem:
            problems.append(problem)
    if problems:
        raise ApiError(400, "invalid_body", "; ".join(problems), problems=problems)
    return data


def _check_field(name: str, value: Any, f: Field) -> str | None:
    jtype = JSON_TYPES[f.type]
    if not _is(value, f.type):
        return f"field '{name}' must be {_article(jtype)}, got {_json_type(value)}"
    if f.type is str:
        if len(value) > f.max_length:
            return f"field '{name}' is longer than {f.max_length} characters"
        if f.choices is not None and value not in f.choices:
            return f"field '{name}' must be one of: {', '.join(f.choices)}"
    if f.type is list:
        if len(value) > f.max_length:
            return f"field '{name}' has more than {f.max_length} items"
        for item in value:
            if f.items is not None and not _is(item, f.items):
                return (f"field '{name}' must contain only {JSON_TYPES[f.items]}s, "
                        f"got {_json_type(item)}")
    return None


def _is(value: Any, t: type) -> bool:
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, t)


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    for t, name in ((bool, "boolean"), (str, "string"), (int, "integer"), (float, "number"),
                    (list, "array"), (dict, "object")):
        if isinstance(value, t):
            return name
    return type(value).__name__  # pragma: no cover


# --- query strings ----------------------------------------------------------------------------

QuerySpec = Mapping[str, Callable[[str], Any]]


def parse_query(req: HttpRequest, spec: QuerySpec) -> dict[str, Any]:
    problems, values = [], {}
    unknown = sorted(set(req.query) - set(spec))
    if unknown:
        problems.append(f"unknown parameter(s): {', '.join(unknown)}")
    for name, parse in spec.items():
        raw = req.query.get(name)
        if not raw:
            continue
        if len(raw) > 1:
            problems.append(f"parameter '{name}' given more than once")
            continue
        try:
            values[name] = parse(raw[0])
        except ValueError as exc:
            problems.append(f"parameter '{name}': {exc}")
    if problems:
        raise ApiError(400, "invalid_query", "; ".join(problems), problems=problems)
    return values


def iso_datetime(raw: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 date-time, got {raw!r}") from None
    if value.tzinfo is None:
        raise ValueError("date-time needs a time zone offset, e.g. 2026-03-02T08:00:00+01:00")
    return value


def int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value
    parse.json_type = "integer"  # type: ignore[attr-defined]
    return parse


def one_of(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"must be one of: {', '.join(choices)}")
        return raw
    return parse


def text(raw: str) -> str:
    if len(raw) > 200:
        raise ValueError("longer than 200 characters")
    return raw
