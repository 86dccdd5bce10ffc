"""Callback tasks through the API: a practice's line of patients to call back, a task created by a
secretary, taken, marked done or cancelled.

Scoped like every practice route: a secretary or practitioner sees only the practices she covers
(another practice's list is refused, another practice's task is "not found"). Reads and changes
are audited by the store: a change and its entry, a read and its trace, share one transaction
(see callrouter.store.tasks).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from callrouter.auth.permissions import allowed, practice_scope
from callrouter.domain.call import mask_number
from callrouter.domain.phone import InvalidNumber, normalise
from callrouter.domain.errors import UnknownCall, UnknownUser
from callrouter.domain.tasks import ACTIVE, STATES, TaskQuery, TaskStateError, TaskView, UnknownTask
from callrouter.web.http import ApiError, BodySpec, Field, current, int_between, parse_body, parse_query
from callrouter.web.ports import AuditTrail, CallRecords, TaskBoard, UserDirectory
from callrouter.web.router import Context, Route, check_practice, check_visible, guarded

logger = logging.getLogger(__name__)

DEFAULT_EXPIRY = dt.timedelta(minutes=240)
MAX_EXPIRY_MINUTES = 7 * 24 * 60
NOTE_MAX = 280  # a few words for whoever calls back, not a medical record
_SIP_URI = re.compile(r"sips?:[^\s@]+@[^\s@]+")


def states(raw: str) -> tuple[str, ...]:
    """`state=open,assigned`: one or more task states, comma-separated."""
    values = tuple(dict.fromkeys(v.strip() for v in raw.split(",")))
    unknown = [v for v in values if v not in STATES]
    if unknown:
        raise ValueError(f"unknown state(s) {', '.join(map(repr, unknown))}; expected: {', '.join(STATES)}")
    return values


LIST_QUERY = {"state": states, "limit": int_between(1, 1000)}
CREATE_BODY = {"number": Field(str, max_length=32), "note": Field(str, required=False, max_length=NOTE_MAX),
               "expires_in_minutes": Field(int, required=False)}
ASSIGN_BODY = {"to": Field(str, required=False, max_length=200)}
DONE_BODY = {"call_id": Field(str, required=False, max_length=64)}
CANCEL_BODY = {"reason": Field(str, required=False, max_length=200)}
CALL_BODY = {"secretary": Field(str, required=False, max_length=200)}

# Blocking (from an API thread): ring the secretary, then the patient, for this task (the
# controller's CallbackDesk.call_now on the reactor thread). Raises LookupError when no such
# secretary is in a queue, ValueError when she or the task cannot be called now.
CallNow = Callable[[TaskView, str], Any]


def _no_op(task: TaskView) -> None:
    return None


@dataclass(frozen=True)
class TaskApi:
    audit: AuditTrail
    repo: TaskBoard
    # Told of each task created through the API, after it is stored; called from an API thread
    # (the controller hops to the reactor itself). An error there is logged: the task stays stored
    # and a restarted controller finds it with TaskRepository.pending.
    on_created: Callable[[TaskView], None] = _no_op
    default_expiry: dt.timedelta | Callable[[], dt.timedelta] = DEFAULT_EXPIRY  # a Live: follows the reload
    users: UserDirectory | None = None  # to check whom a task is given to; None: any name
    calls: CallRecords | None = None  # to check the call a task is closed with; None: any id
    known_practice: Callable[[str], bool] | None = None  # None: any practice name
    call_now: CallNow | None = None  # None: POST /api/tasks/{id}/call answers 503

    def list(self, ctx: Context):
        practice = ctx.params["practice"]
        check_practice(ctx, practice)
        q = parse_query(ctx.request, LIST_QUERY)
        wanted = q.get("state", ACTIVE)
        views = self.repo.read_list(TaskQuery(frozenset({practice}), frozenset(wanted), q.get("limit", 100)),
                                    ctx.actor, ctx.now,
                                    {"practice": practice, "state": list(wanted), "limit": q.get("limit")})
        return {"tasks": [v.to_json() for v in views]}

    def create(self, ctx: Context):
        practice = ctx.params["practice"]
        check_practice(ctx, practice)
        if self.known_practice is not None and not self.known_practice(practice):
            raise ApiError(404, "not_found", f"no such practice {practice}")
        body = parse_body(ctx.request, CREATE_BODY)
        number = _number(body["number"])
        minutes = body.get("expires_in_minutes")
        if minutes is not None and not 1 <= minutes <= MAX_EXPIRY_MINUTES:
            raise ApiError(400, "invalid_body", f"field 'expires_in_minutes' must be between 1 and "
                           f"{MAX_EXPIRY_MINUTES}")
        expiry = dt.timedelta(minutes=minutes) if minutes is not None else current(self.default_expiry)
        view = self.repo.create(practice, number, "secretary", ctx.now, ctx.now + expiry,
                                note=body.get("note"), created_by=ctx.user.username, actor=ctx.actor)
        try:
            self.on_created(view)
        except Exception:
            logger.exception("task %s (%s) stored, but the controller was not told; it is picked up "
                             "at the next restart", view.id, mask_number(view.number))
        return view.to_json()

    def get(self, ctx: Context):
        """Another practice's task is "no such task", as a missing one."""
        try:
            view = self.repo.read(ctx.params["task_id"], practice_scope(ctx.user.role, ctx.user.attrs),
                                  ctx.actor, ctx.now)
        except UnknownTask:
            raise ApiError(404, "not_found", "no such task") from None
        return view.to_json()

    def assign(self, ctx: Context):
        body = _optional_body(ctx, ASSIGN_BODY)
        task = self._visible(ctx)
        who = body.get("to") or ctx.user.username
        if who != ctx.user.username:
            self._check_assignee(who, task.practice)
        with _state_errors():
            return self.repo.assign(task.id, who, ctx.now, actor=ctx.actor).to_json()

    def done(self, ctx: Context):
        body = _optional_body(ctx, DONE_BODY)
        task = self._visible(ctx)
        call_id = body.get("call_id") or None
        if call_id is not None and self.calls is not None:
            try:
                call = self.calls.get(call_id)
            except UnknownCall:
                call = None
            if call is None or call.practice != task.practice:
                raise ApiError(422, "refused", f"no call {call_id} for practice {task.practice}",
                               reason="unknown call")
        with _state_errors():
            return self.repo.done(task.id, call_id, None, ctx.now, actor=ctx.actor).to_json()

    def call(self, ctx: Context):
        """Call the patient back now: her phone (or the named secretary's) rings first."""
        body = _optional_body(ctx, CALL_BODY)
        task = self._visible(ctx)
        if self.call_now is None:
            raise ApiError(503, "unavailable", "no call controller runs on this server")
        if task.state not in ("open", "assigned"):
            raise ApiError(409, "conflict", f"task {task.id} is {task.state}", reason=f"task {task.state}",
                           state=task.state)
        who = body.get("secretary") or ctx.user.username
        try:
            self.call_now(task, who)
        except LookupError:
            raise ApiError(404, "not_found", f"{who} is not a secretary of any queue") from None
        except ValueError as exc:
            raise ApiError(409, "conflict", str(exc), reason=str(exc)) from None
        self.audit.record(ctx.actor, "task.call", f"task:{task.id}", ctx.now, details={"secretary": who})
        return {"task": task.to_json(), "calling": who}

    def cancel(self, ctx: Context):
        body = _optional_body(ctx, CANCEL_BODY)
        task = self._visible(ctx)
        with _state_errors():
            return self.repo.cancel(task.id, ctx.user.username, ctx.now, body.get("reason"),
                                    actor=ctx.actor).to_json()

    # --- helpers -------------------------------------------------------------------------------

    def _visible(self, ctx: Context) -> TaskView:
        try:
            view = self.repo.get(ctx.params["task_id"])
        except UnknownTask:
            raise ApiError(404, "not_found", "no such task") from None
        check_visible(ctx, view.practice, "task")
        return view

    def _check_assignee(self, who: str, practice: str) -> None:
        """Another user must be enabled, allowed to handle callbacks and cover the practice; a
        phone (SIP URI) is taken as given: it is the controller's to know."""
        if who.startswith(("sip:", "sips:")):
            if not _SIP_URI.fullmatch(who):
                raise ApiError(400, "invalid_body", "field 'to' must be a username or a SIP URI "
                               "such as sip:accueil@192.0.2.10")
            return
        if self.users is None:
            return
        try:
            user = self.users.get(who)
        except UnknownUser:
            raise ApiError(422, "refused", f"no user {who}", reason="unknown user") from None
        ok, why = allowed(user.role, "callbacks", "write", user.attrs)
        if not ok:
            raise ApiError(422, "refused", f"{who} cannot take callback tasks: {why}", reason=why)
        scope = practice_scope(user.role, user.attrs)
        if scope is not None and practice not in scope:
            raise ApiError(422, "refused", f"{who} does not cover practice {practice}",
                           reason="practice not covered by the assignee")


def _number(raw: str) -> str:
    try:
        return normalise(raw)
    except InvalidNumber as exc:
        raise ApiError(400, "invalid_body", f"field 'number': {exc}", reason=str(exc)) from None


def _optional_body(ctx: Context, spec: BodySpec) -> dict[str, Any]:
    """The JSON body, or no fields at all when the request has no body."""
    req = ctx.request
    if not req.body_too_large and not req.body.strip():
        return {}
    return parse_body(req, spec)


@contextlib.contextmanager
def _state_errors() -> Iterator[None]:
    """A transition the task's state refuses is a 409 whose reason says why."""
    try:
        yield
    except TaskStateError as exc:
        raise ApiError(409, "conflict", str(exc), reason=str(exc), state=exc.state) from None
    except UnknownTask:  # removed between the check and the change
        raise ApiError(404, "not_found", "no such task") from None


def task_routes(api: TaskApi | None) -> list[Route]:
    """The routes, served even when tasks are not wired in (then they answer 503)."""

    h = guarded(api, "callback tasks are not enabled on this server")

    read, write = ("callbacks", "read"), ("callbacks", "write")
    return [
        Route("GET", "/api/practices/{practice}/tasks", h("list"), (read,), query=LIST_QUERY),
        Route("POST", "/api/practices/{practice}/tasks", h("create"), (write,), body=CREATE_BODY,
              status=201),
        Route("GET", "/api/tasks/{task_id}", h("get"), (read,)),
        Route("POST", "/api/tasks/{task_id}/assign", h("assign"), (write,), body=ASSIGN_BODY),
        Route("POST", "/api/tasks/{task_id}/done", h("done"), (write,), body=DONE_BODY),
        Route("POST", "/api/tasks/{task_id}/cancel", h("cancel"), (write,), body=CANCEL_BODY),
        Route("POST", "/api/tasks/{task_id}/call", h("call"), (write,), body=CALL_BODY),
    ]

