"""Callback-task changes as events: the task store, wrapped so that every stored change is
announced (EventNotifier.task_changed), whoever made it.

Tasks change from the API's threads (a secretary creates, takes, closes or cancels one) and from
the controller's recorder thread (an overflow or a voicemail creates one, attempts, the expiry).
Wrapping the one store they all write to announces each of them, after its transaction committed,
without the API or the controller knowing of events. `announce` is given each changed task view;
it must be callable from any thread (the daemon passes reactor.callFromThread to the notifier).
Reads are passed through untouched.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

logger = logging.getLogger(__name__)

# The store's methods that change tasks; each returns the changed task view, or a list of them.
CHANGES = frozenset({"create", "assign", "start_attempt", "attempt_failed", "done", "cancel",
                     "expire_due", "release_interrupted"})


class AnnouncedTasks:
    def __init__(self, store: Any, announce: Callable[[Any], None]) -> None:
        self._store = store
        self._announce = announce

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name not in CHANGES or not callable(attr):
            return attr

        @functools.wraps(attr)
        def changed(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            for view in result if isinstance(result, list) else (result,):
                if view is not None:
                    self._tell(view)
            return result

        return changed

    def _tell(self, view: Any) -> None:
        try:
            self._announce(view)
        except Exception:  # the change is stored: a lost event only delays a console's refresh
            logger.exception("task %s changed but not announced", getattr(view, "id", "?"))
