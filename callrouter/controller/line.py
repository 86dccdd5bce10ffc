"""The one line calls and callback tasks wait in, and its dispatch.

Both wait in the QueueBook in one serving order (callrouter.domain.serving). Whenever a call joins
or a secretary may take one (`dispatch`), the next waiting one that a free secretary covers is
offered: a call by the call side, a callback task by the callback desk, each having said which kind
of session it serves (`serve`). A change in a queue is published and counted (`changed`).

With several nodes sharing the desk (callrouter.controller.shared_desk), `shared` dispatches
instead, over every node's calls; it hands this node's calls their secretaries through `offer`.
"""

from __future__ import annotations

from typing import Any, Callable

from callrouter.controller.context import CallContext
from callrouter.controller.queues import QueueBook
from callrouter.domain.serving import Secretary, Waiting

Offer = Callable[[Waiting, list[Secretary]], None]


class Line:
    def __init__(self, ctx: CallContext, queues: QueueBook) -> None:
        self._ctx = ctx
        self.queues = queues
        self._offers: dict[type, Offer] = {}
        self.shared: Any = None  # the shared desk's dispatcher, when several nodes share the desk

    def serve(self, kind: type, offer: Offer) -> None:
        """Waiting sessions of type `kind` are offered by `offer(waiting, secretaries)`."""
        self._offers[kind] = offer

    def offer(self, w: Waiting, secretaries: list[Secretary]) -> None:
        """Ring `secretaries` for `w` (its kind's offer): the shared desk, once it claimed them."""
        self._offers[type(w.session)](w, secretaries)

    def dispatch(self) -> None:
        if self.shared is not None:
            self.shared.dispatch()
            return
        while (pair := self.queues.next_offer(self._excluded(), self._ctx.now())) is not None:
            w, secretaries = pair
            self._offers[type(w.session)](w, secretaries)

    def changed(self, practice: str, queue: str) -> None:
        waiting = [w for w in self.queues.waiting() if (w.practice, w.queue) == (practice, queue)]
        longest = self._ctx.seconds() - min(w.enqueued_at for w in waiting) if waiting else 0.0
        self._ctx.events.queue_changed(practice, queue, len(waiting), longest)
        self._ctx.metrics.queue_waiting.labels(practice, queue).set(len(waiting))

    def leave(self, session: Any) -> Waiting | None:
        """Out of the line (answered, ended, overflowing...); its queue's change published."""
        waiting = self.queues.remove(session)
        if waiting is not None:
            self.changed(waiting.practice, waiting.queue)
        return waiting

    def _excluded(self) -> dict[Any, set[str]]:
        return {w.session: w.session.tried for w in self.queues.waiting()}
