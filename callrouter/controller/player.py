"""What every session on the media plane needs: prompts played on its leg, and named timers.

A call, a callback task and an alert call each play prompts one after another on a leg and then go
on (`PromptPlayer.play(paths, then)`), loop one prompt while waiting (music on hold, ringback), and
arm named one-shot timers (a digit timeout, a ring timeout) that are cancelled when the session
moves on (`SessionTimers`). Both are small objects a session holds; neither knows what a call is.

- `PromptPlayer` sends through a `send(command)` callable (the owner binds the worker), so the same
  player serves a caller's leg, a secretary's or a practitioner's. A `Play` whose file cannot be
  played (`Error` on "play") counts as played: a missing prompt never leaves a caller stuck.
- `SessionTimers` goes through the injected reactor (twisted.internet.task.Clock in tests). Once
  `close()`d (the session ended), no timer fires or starts: a late timeout never acts on an ended
  session.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from callrouter.media import protocol as p

Send = Callable[[Any], None]


class PromptPlayer:
    """Plays prompts on one leg: a list one after another, then `then`; or one in a loop."""

    def __init__(self, send: Send, leg: str) -> None:
        self.leg = leg  # the owner may move it (an alert call redialled on another leg)
        self._send = send
        self._queue: list[str] = []
        self._then: Callable[[], None] | None = None

    @property
    def playing(self) -> bool:
        """Prompts are still to come or an action waits for their end (a loop does not count)."""
        return bool(self._queue or self._then)

    def play(self, paths: Sequence[str], then: Callable[[], None] | None = None) -> None:
        """Play `paths` in order (at least one), then call `then`; replaces what was queued."""
        self._queue, self._then = list(paths[1:]), then
        self._send(p.Play(self.leg, paths[0]))

    def loop(self, path: str) -> None:
        """Play `path` over and over until something else is played or it is stopped."""
        self.forget()
        self._send(p.Play(self.leg, path, loop=True))

    def stop(self, always: bool = False) -> None:
        """Stop the prompts: the worker is told only when something is queued or awaited, unless
        `always` (e.g. a loop that must go quiet)."""
        if always or self.playing:
            self.forget()
            self._send(p.StopPlayback(self.leg))

    def forget(self) -> None:
        """Drop what was queued and the action after it, without telling the worker (the leg is
        bridged or gone)."""
        self._queue, self._then = [], None

    def finished(self) -> None:
        """The worker finished the current prompt: the next one, or the action after the last."""
        if self._queue:
            self._send(p.Play(self.leg, self._queue.pop(0)))
            return
        then, self._then = self._then, None
        if then is not None:
            then()

    def failed(self, command: str) -> None:
        """The worker could not run `command`: a prompt it cannot play counts as played."""
        if command == "play" and self.playing:
            self.finished()


class SessionTimers:
    """Named one-shot timers of one session; starting a name again replaces its timer."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._calls: dict[str, Any] = {}
        self._closed = False

    def start(self, name: str, seconds: float, fn: Callable[[], None]) -> None:
        self.cancel(name)
        if not self._closed:
            self._calls[name] = self._reactor.callLater(seconds, self._fire, name, fn)

    def cancel(self, name: str) -> None:
        call = self._calls.pop(name, None)
        if call is not None and call.active():
            call.cancel()

    def cancel_all(self) -> None:
        for name in list(self._calls):
            self.cancel(name)

    def close(self) -> None:
        """The session ended: cancel every timer, and start none from now on."""
        self._closed = True
        self.cancel_all()

    def __contains__(self, name: object) -> bool:
        return name in self._calls

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._calls))

    def _fire(self, name: str, fn: Callable[[], None]) -> None:
        self._calls.pop(name, None)
        if not self._closed:
            fn()
