"""The desk shared by several nodes on one PostgreSQL: one serving order over every node's waiting
calls, at most one active offer per secretary whatever the node (docs/operations.md, "Several
nodes"; the rows: callrouter.store.desk; the order: callrouter.domain.desk_view).

This node's line (the QueueBook) stays the truth of its own calls; `SharedDesk` mirrors it into
the database (a row per waiting call, its place and who was tried for it) and dispatches over the
view every node reads: each round reads the view (in the thread pool), plans the serving order
over every node's calls, and for each of this node's calls in the plan claims its secretaries in
the database first, then rings them. A call of another node reserves its secretaries: this node
gives them no later call, and only their node claims and rings them. A claim the database refuses
(she is busy elsewhere, another node is deciding for her, the order changed) makes a new round.

A call joining this node's line has its row written before any other store call waiting (the
other nodes cannot serve in order a call they do not see). Rounds run when this node's line changes, when a secretary may take a call, when another node's
change is notified (LISTEN/NOTIFY), and every `reconcile_s` for what a notification missed. Every
store call runs in the thread pool, one at a time and in order, never on the reactor.

Secretaries' logins and pauses are written to the database on each change and adopted from it
when another node changed them. Each offer rung here is her active offer row until her wrap-up
ends; its end is retried until the database takes it.

The database unreachable, or this node's lease gone: nothing is claimed, so nobody is rung for a
waiting call (callers hear the hold music; the overflow route applies on time); the calls already
bridged go on, and the call records are written when the database is back (the recorder's retry).
Back under a new epoch, the node writes its waiting calls again and takes back the active offers
of its secretaries still ringing, on a call or in wrap-up here.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet import defer, task

from callrouter.controller.desk import Desk
from callrouter.controller.line import Line
from callrouter.controller.shared_rows import DeskRows, NodeView, coverage_of, session_key, waiting_row
from callrouter.domain import desk_view
from callrouter.domain.desk_view import DeskView, SecretaryRow, WaitingRow
from callrouter.domain.serving import Secretary, Waiting
from callrouter.ports import RunBlocking, utc_from_clock

logger = logging.getLogger(__name__)

RECONCILE_S = 1.0
SWEEP_EVERY = 5  # reconciles between two sweeps of a dead node's rows
MAX_ROUNDS = 8   # per dispatch; the reconcile goes on from there
FAILED = object()  # what a store call that raised gives (logged): the next sync or reconcile retries


class SharedDesk(Service):
    name = "shared-desk"

    def __init__(self, rows: DeskRows, node: NodeView, desk: Desk, line: Line, reactor: Any,
                 run_blocking: RunBlocking, listen: Callable[[Callable[[str], None]], Any] | None = None,
                 reconcile_s: float = RECONCILE_S) -> None:
        """`listen(on_notify)`: starts listening to the desk's notifications (a thread calling
        `on_notify(node)`), returns what to `stop()`; None: the reconcile alone."""
        self._rows, self._node, self._desk, self._line = rows, node, desk, line
        self._reactor, self._run, self._listen, self._reconcile_s = reactor, run_blocking, listen, reconcile_s
        self._serial = defer.DeferredLock()  # the store's calls, one at a time, in order
        self._heads: list[defer.Deferred] = []  # waiting for it ahead of the others: joined calls' rows
        self._syncing = defer.DeferredLock()  # one sync at a time: each sees the line as it is then
        self._written: dict[str, tuple[WaitingRow, int]] = {}   # key -> (row, epoch) in the database
        self._states: dict[str, SecretaryRow] = {}               # id -> her row as last written or read
        self._writing: set[str] = set()                          # ids whose state is being written
        self._wrote: dict[str, int] = {}                         # id -> generation her last write ended at
        self._generation = 0
        self._adopted = False  # the database's states read once: only then are this node's written
        self._held: dict[str, str] = {}      # secretary id -> the key of her active offer row
        self._answered: set[str] = set()     # ids who answered the offer they hold
        self._claimed: dict[str, str] = {}   # id -> key: claimed, about to ring
        self._unsent: list[tuple[str, str, str]] = []  # ends not written yet (the database away)
        self._epoch: int | None = None       # the epoch our rows were written under
        self._busy = self._again = self._sync_due = False
        self._failing = self._write_failing = False
        self._ticks = 0
        self._listener: Any = None
        self.elsewhere: dict[str, bool] = {}  # id -> answered: her active offer is another node's
        self._loop = task.LoopingCall(self._reconcile)
        self._loop.clock = reactor
        line.shared = self
        desk.shared = self
        desk.queues.on_change = self._line_changed

    # --- service ---------------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        if self._listen is not None:
            self._listener = self._listen(self._notified)
        self._loop.start(self._reconcile_s, now=True).addErrback(
            lambda f: logger.error("shared desk: reconcile stopped: %s", f.getTraceback()))

    def stopService(self):
        super().stopService()
        if self._loop.running:
            self._loop.stop()
        if self._listener is not None:
            self._reactor.callInThread(self._listener.stop)
        return self._serial.acquire().addCallback(lambda lock: lock.release())  # writes in flight end

    # --- dispatch --------------------------------------------------------------------------------

    def dispatch(self) -> None:
        """A round now (or right after the one running)."""
        if self._busy:
            self._again = True
            return
        self._busy = True
        d = self._rounds()
        d.addErrback(lambda f: logger.error("shared desk: dispatch failed: %s", f.getTraceback()))
        d.addBoth(self._rounds_done)

    def _rounds_done(self, _: Any) -> None:
        self._busy = False

    @defer.inlineCallbacks
    def _rounds(self):
        for _round in range(MAX_ROUNDS):
            self._again = False
            yield self._sync()
            try:
                generation = self._generation
                view = yield self._store(self._rows.view, utc_from_clock(self._reactor))
            except Exception as exc:
                if not self._failing:
                    logger.warning("shared desk: view not read (%s): nobody is rung until the database answers", exc)
                self._failing = True
                return
            if self._failing:
                logger.warning("shared desk: the database answers again")
            self._failing = False
            self._adopt(view, generation)
            refused = yield self._serve(view)
            if not (refused or self._again):
                return

    @defer.inlineCallbacks
    def _serve(self, view: DeskView):
        """Claims and rings this node's calls of the plan; True when a claim was refused."""
        epoch = self._node.epoch if self._node.holds() else None
        if epoch is None or epoch != self._epoch:
            return False  # writes first (the next sync), under this epoch
        book = self._desk.queues
        members = [dataclasses.replace(a, levels=dict(a.levels), answers=dict(a.answers))
                   for a in book.secretaries()]
        covering = coverage_of(book.coverage())
        now = utc_from_clock(self._reactor)
        mine = {session_key(w.session): w for w in book.waiting()}
        for row, ids in desk_view.plan(view, members, covering, now):
            w = mine.get(row.call_id)
            if row.node_id != self._rows.node or w is None:
                continue  # another node's call: its secretaries are reserved for it
            wanted = (row.call_id, sorted(ids))

            def check(fresh: DeskView, wanted=wanted) -> bool:
                return any((r.call_id, sorted(i)) == wanted for r, i in desk_view.plan(fresh, members, covering, now))

            claim = yield self._store(self._rows.claim, row.call_id, ids, epoch, check)
            if not claim.granted:
                logger.info("shared desk: claim for %s refused (%s); dispatching again", row.call_id, claim.why)
                return True
            # The claim marked its row offered: written again (not offered) if it comes back in line.
            written = self._written.get(row.call_id)
            if written is not None:
                self._written[row.call_id] = (dataclasses.replace(written[0], offered=True), written[1])
            self._ring(w, ids, row.call_id)
        return False

    def _ring(self, w: Waiting, ids: list[str], key: str) -> None:
        """Claimed: ring them, unless the call left the line or she is busy here meanwhile."""
        book = self._desk.queues
        secretaries = [book.find(i) for i in ids]
        if w not in book.waiting() or any(a is None or a.busy for a in secretaries):
            for who in ids:
                self._end(key, who, "withdrawn")
            return
        for a in secretaries:
            self._claimed[a.id] = key
        try:
            self._line.offer(w, secretaries)
        finally:
            for a in secretaries:
                self._claimed.pop(a.id, None)
                if self._held.get(a.id) != key:  # not rung after all (no media capacity now)
                    self._end(key, a.id, "not_rung")

    # --- this node's line, into the database -----------------------------------------------------

    def _line_changed(self) -> None:
        self._write_joined()
        if not self._sync_due:
            self._sync_due = True
            self._reactor.callLater(0, self._sync)

    def _write_joined(self) -> None:
        """A call that just joined this node's line: its row is written before anything else (at
        the head of the store's queue, never behind a sync or a round), as another node's claim
        cannot see it before it is committed (docs/operations.md: the order across nodes holds
        over the rows a claim saw)."""
        epoch = self._node.epoch if self._node.holds() else None
        if epoch is None or epoch != self._epoch:
            return  # the next sync writes every row under the new epoch
        for w in self._desk.queues.waiting():
            key = session_key(w.session)
            if key in self._written:
                continue
            written = (waiting_row(w, self._rows.node), epoch)
            self._written[key] = written  # a sync neither writes it again nor misses its removal
            self._write(self._rows.put_waiting, *written, first=True).addCallback(self._joined, key, written)

    def _joined(self, ok: Any, key: str, written: tuple[WaitingRow, int]) -> None:
        if ok is not True and self._written.get(key) == written:
            self._written.pop(key)  # not written: the next sync (a reconcile's at the latest) retries

    def _sync(self) -> defer.Deferred:
        """The waiting rows as this node's line has them now (only what changed is written)."""
        self._sync_due = False
        return self._syncing.run(self._sync_once)

    @defer.inlineCallbacks
    def _sync_once(self):
        epoch = self._node.epoch if self._node.holds() else None
        if epoch is None:
            return
        if epoch != self._epoch:
            yield self._new_epoch(epoch)
        current = {session_key(w.session): waiting_row(w, self._rows.node) for w in self._desk.queues.waiting()}
        for key, row in current.items():
            if self._written.get(key) != (row, epoch):
                ok = yield self._write(self._rows.put_waiting, row, epoch)
                if ok is True:
                    self._written[key] = (row, epoch)
        here = {session_key(w.session) for w in self._desk.queues.waiting()}  # joined meanwhile: kept
        for key in [k for k in self._written if k not in current and k not in here]:
            done = yield self._write(self._rows.remove_waiting, key)
            if done is not FAILED:
                self._written.pop(key, None)

    @defer.inlineCallbacks
    def _new_epoch(self, epoch: int):
        """This node's lease under a new epoch: its rows of the old one are void. Its waiting calls
        are written again, its secretaries' active offers taken back."""
        if self._epoch is not None:
            logger.warning("shared desk: lease epoch %s now (was %s): rows written again", epoch, self._epoch)
        self._epoch, self._written = epoch, {}
        for who, key in list(self._held.items()):
            ok = yield self._write(self._rows.hold, key, who, epoch)
            if ok is not True:
                logger.error("shared desk: %s's active offer not taken back (another node's now?)", who)
        states = [self._row_of(a) for a in self._desk.queues.secretaries()]
        yield self._write(self._rows.seed_states, states)

    # --- the desk's hooks (callrouter.controller.desk) -----------------------------------------

    def ringing(self, secretary: Secretary, key: str | None) -> None:
        """Her phone rings (or she took over a call): the offer claimed for her, or one to hold."""
        claimed = self._claimed.get(secretary.id)
        if claimed is not None:
            self._held[secretary.id] = claimed
            return
        if secretary.id in self._held:
            return
        key = key or f"held:{uuid.uuid4().hex[:12]}"
        self._held[secretary.id] = key
        epoch = self._node.epoch
        if epoch is not None:
            self._write(self._rows.hold, key, secretary.id, epoch).addCallback(
                lambda ok: ok is not True and logger.error("shared desk: %s rung with no offer row (busy elsewhere, "
                                                        "or this node's lease gone)", secretary.id))

    def answered(self, secretary: Secretary) -> None:
        """She answered (or is on a call taken back after a restart: held now)."""
        if secretary.id not in self._held:
            self.ringing(secretary, None)
        self._answered.add(secretary.id)
        self._write(self._rows.answered, self._held[secretary.id], secretary.id)

    def ended(self, secretary: Secretary) -> None:
        """Free again (the offer not taken, or her call and wrap-up over): her row ends."""
        key = self._held.pop(secretary.id, None)
        if key is not None:
            outcome = "answered" if secretary.id in self._answered else "not_taken"
            self._answered.discard(secretary.id)
            self._end(key, secretary.id, outcome)

    def states_changed(self) -> None:
        """Her login or pause changed here: written. Not before the database's were read once: a
        node starting again must not put back over them what its `var/secretaries.json` says."""
        if not self._adopted:
            return
        for secretary in self._desk.queues.secretaries():
            row = self._row_of(secretary)
            if self._states.get(secretary.id) != row:
                self._states[secretary.id] = row
                self._writing.add(secretary.id)
                self._write(self._rows.set_state, row, None).addBoth(self._state_written, secretary.id)

    def _state_written(self, result: Any, who: str) -> None:
        self._writing.discard(who)
        self._generation += 1
        self._wrote[who] = self._generation
        if result is FAILED:
            self._states.pop(who, None)  # not written: the next change or reconcile tries again

    def _adopt(self, view: DeskView, generation: int) -> None:
        """Other nodes' changes to her login and pause, and their waiting calls (places, lengths)."""
        book = self._desk.queues
        for secretary in book.secretaries():
            row = view.states.get(secretary.id)
            if row is None or secretary.id in self._writing or self._wrote.get(secretary.id, 0) > generation:
                continue
            self._states[secretary.id] = row
            wanted = (row.logged_in or secretary.username is None, row.paused, row.auto_paused and row.paused is not None)
            if (secretary.logged_in, secretary.paused, secretary.auto_paused) != wanted:
                self._desk.adopt(secretary, *wanted)
        self._adopted = True
        self.elsewhere = {o.secretary: o.answered for o in view.offers if o.node_id != self._rows.node}
        epoch = self._node.epoch if self._node.holds() else None
        if epoch is not None and epoch == self._epoch:  # a hold that was never written: written now
            rows = {o.secretary for o in view.offers if o.node_id == self._rows.node}
            for who, key in list(self._held.items()):
                if who not in rows and who not in self._claimed:
                    self._write(self._rows.hold, key, who, epoch).addCallback(
                        lambda ok, who=who: ok is not True and logger.error(
                            "shared desk: %s is on a call here with no offer row (another node's now?)", who))
        book.elsewhere = [Waiting(r, r.practice, r.queue, r.priority, r.enqueued_at, r.seq, r.line, r.strategy)
                          for r in view.waiting if r.node_id != self._rows.node]

    # --- helpers --------------------------------------------------------------------------------

    def _notified(self, node: str) -> None:
        """From the listener's thread: another node changed the desk."""
        if node != self._rows.node:
            self._reactor.callFromThread(self.dispatch)

    def _reconcile(self) -> None:
        self._ticks += 1
        for key, who, outcome in self._unsent[:]:
            self._unsent.remove((key, who, outcome))
            self._end(key, who, outcome)
        if self._ticks % SWEEP_EVERY == 0 and self._node.holds():
            self._write(self._rows.sweep)
        if self._states and any(self._states.get(a.id) != self._row_of(a) for a in self._desk.queues.secretaries()):
            self.states_changed()
        self.dispatch()

    def _end(self, key: str, who: str, outcome: str) -> None:
        def failed(f):
            self._unsent.append((key, who, outcome))
            if not self._write_failing:
                logger.warning("shared desk: %s's offer end not written (%s); retried", who, f.getErrorMessage())
            self._write_failing = True
        self._store(self._rows.end, key, who, outcome).addErrback(failed)

    def _store(self, f: Callable[..., Any], *args: Any, first: bool = False) -> defer.Deferred:
        """`f` in the thread pool once the store's calls before it are done; `first`: before
        those waiting (after the one running, and the other `first` ones)."""
        lock = self._serial
        d = lock.acquire()
        if first and not d.called:
            lock.waiting.remove(d)
            self._heads = [h for h in self._heads if not h.called]
            lock.waiting.insert(len(self._heads), d)
            self._heads.append(d)

        def run(_):
            return defer.maybeDeferred(self._run, f, *args).addBoth(lambda result: (lock.release(), result)[1])
        return d.addCallback(run)

    def _write(self, f: Callable[..., Any], *args: Any, first: bool = False) -> defer.Deferred:
        """A store call whose failure is logged (FAILED then), once per outage: the next sync or
        reconcile retries."""
        def done(result):
            if self._write_failing:
                logger.warning("shared desk: the database takes writes again")
            self._write_failing = False
            return result

        def failed(failure):
            if not self._write_failing:
                logger.warning("shared desk: %s not written (%s); retried until the database takes it",
                               f.__name__, failure.getErrorMessage())
            self._write_failing = True
            return FAILED
        return self._store(f, *args, first=first).addCallbacks(done, failed)

    @staticmethod
    def _row_of(a: Secretary) -> SecretaryRow:
        return SecretaryRow(a.id, a.logged_in, a.paused, a.auto_paused, a.missed)

