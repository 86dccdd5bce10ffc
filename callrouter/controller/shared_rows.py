"""What the shared desk (callrouter.controller.shared_desk) needs from the store and the node's
lease, and how this node's line is written as rows: a session's row id, a waiting call as a row,
the QueueBook's coverage rule over a copy."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Protocol

from callrouter.domain import desk_view
from callrouter.domain.desk_view import DeskView, SecretaryRow, WaitingRow
from callrouter.domain.serving import Waiting


class DeskRows(Protocol):
    """The shared desk's rows (callrouter.store.desk.DeskStore). Blocking: run in the thread pool."""

    node: str

    def view(self, now: Any = None) -> DeskView: ...
    def sweep(self) -> int: ...
    def put_waiting(self, row: WaitingRow, epoch: int) -> bool: ...
    def remove_waiting(self, call_id: str) -> None: ...
    def claim(self, call_id: str, secretaries: Iterable[str], epoch: int,
              check: Callable[[DeskView], bool] | None = None) -> Any: ...
    def hold(self, call_id: str, secretary: str, epoch: int) -> bool: ...
    def answered(self, call_id: str, secretary: str) -> None: ...
    def end(self, call_id: str, secretary: str, outcome: str) -> None: ...
    def set_state(self, state: SecretaryRow, by: str | None) -> None: ...
    def seed_states(self, states: Iterable[SecretaryRow]) -> None: ...


class NodeView(Protocol):
    """This node's lease (callrouter.cluster.node.NodeLease)."""

    def holds(self) -> bool: ...

    @property
    def epoch(self) -> int | None: ...


def session_key(session: Any) -> str:
    """A waiting session's row id: the call's id, or "task:<id>" for a callback task."""
    call_id = getattr(session, "call_id", None)
    return call_id if not hasattr(session, "task_id") else f"task:{session.task_id}"


def coverage_of(coverage: dict[str, list[str]]) -> desk_view.Covering:
    """The QueueBook's rule (the most precise key wins) over a copy of its coverage."""
    def covering(practice: str, queue: str, line: str) -> list[str]:
        keys = ([line] if line and line.startswith("line:") else []) + [f"{practice}/{queue}", f"{practice}/*", "*"]
        return next((coverage[k] for k in keys if k in coverage), [])
    return covering


def waiting_row(w: Waiting, node: str) -> WaitingRow:
    """This node's waiting call as the row every node reads."""
    return WaitingRow(session_key(w.session), node, w.practice, w.queue, w.line, w.priority, w.enqueued_at, w.seq,
                      w.strategy, getattr(w.zone, "key", "UTC"), frozenset(getattr(w.session, "tried", ())))
