"""The forwarding watch as a service: reads the schedule, runs each watch, gives its verdict.

Every `tick_seconds` it plans, for each practice whose dialplan has a `watch` section, the
watches due since `catch_up_minutes` ago (callrouter.domain.watch: the same plan on every node
and after every restart) and starts those not seen yet. A run starts only once its slot is
claimed in the store (one node runs it), within the practice's daily budget, with the number not
under way (here or on another node) and fewer than `max_in_flight` watches under way on this node.

A run is its attempt and, if that failed, one retry `retry_after` later (to ride out one lost
call). A failure is then stored with the alerts to send to the practice's and the secretariat's
contacts (callrouter.watch.alerts), counted, and set on the gauge that the alert rule reads; the
store announces each change of a run (the wallboards' event). Alerts a gateway refused are tried
again every minute, and the gauge is read again from the store's verdicts, whichever node gave
them, so every node's gauge says the same. `run_now` starts a watch at once
(the API's "test now"), under the same rules. Nothing runs while `enabled` is false: the kill switch.

Several nodes: only the node leading the watch (`leads()`, the cluster's `watch` lead) plans and
places calls, and asks it again before each call (a node that lost its lease places none; the
store's claims are fenced by the same lead). The call back may reach any node's edge: the node it
reaches writes it on the attempt (callrouter.watch.build), and with `shared` this node reads the
store every second for its attempts under way, and once more when one ends without its call back
(the other node's release may end our leg before we read it).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import secrets
from typing import Any, Callable, Mapping

from twisted.application.service import Service
from twisted.internet import defer, task

from callrouter.cluster.ports import Fenced
from callrouter.domain import watch
from callrouter.domain.call import mask_number
from callrouter.domain.model import Dialplan
from callrouter.domain.watch_spec import WatchedNumber
from callrouter.domain.watch_views import FAILED, INTERRUPTED, PASSED, SCHEDULE, RunView, WatchRefused
from callrouter.metrics import Metrics
from callrouter.ports import RunBlocking, utc_from_clock
from callrouter.watch.alerts import WatchAlerts
from callrouter.watch.calls import AttemptRequest, AttemptResult, WatchCalls
from callrouter.watch.ports import WatchStore
from callrouter.watch.settings import WatchSettings

logger = logging.getLogger(__name__)

SEEN_KEEP = dt.timedelta(days=1)  # how long a slot started here is remembered (the store keeps it for good)
ALERT_RETRY = dt.timedelta(minutes=1)  # how often alerts a gateway refused are tried again
PLANS_KEPT = 2000  # days of plans kept in memory (a few per practice)
RETURNS_EVERY_S = 1.0  # with several nodes: how often the store is read for calls back seen elsewhere
RETURN_GRACE_S = 3.0   # and how long after an attempt ended without its call back
NOT_LEADING = ("ce serveur ne mène pas la veille des renvois en ce moment : un autre serveur passe les "
               "appels de test")


class WatchService(Service):
    name = "forwarding-watch"

    def __init__(self, settings: WatchSettings, dialplans: Callable[[], Mapping[str, Dialplan]], store: WatchStore,
                 calls: WatchCalls, alerts: WatchAlerts, reactor: Any, run_blocking: RunBlocking, metrics: Metrics,
                 secretariat: tuple[tuple[str, str], ...] = (),
                 when_ready: Callable[[], defer.Deferred] | None = None,
                 leads: Callable[[], bool] | None = None, shared: bool = False) -> None:
        """`secretariat`: the secretariat's contacts (channel, destination) told of every failure;
        `when_ready()`: fires once calls can be placed (the media workers ready): the schedule is
        read from then on only; `leads()`: whether this node leads the watch now (None: always,
        the single node); `shared`: other nodes' edges may get the calls back (several nodes)."""
        self._when_ready = when_ready or (lambda: defer.succeed(None))
        self._leads = leads or (lambda: True)
        self._shared = shared
        self._dialled: dict[tuple[int, int], float] = {}  # (run, attempt) -> when it was dialled (reactor)
        self._returns_loop: task.LoopingCall | None = None
        self.settings = settings
        self._dialplans, self._store, self._calls, self._alerts = dialplans, store, calls, alerts
        self._reactor, self._run, self._metrics = reactor, run_blocking, metrics
        self._secretariat = secretariat
        self._seen: dict[str, dt.datetime] = {}
        self._runs: dict[int, RunView] = {}   # run id -> the run under way here
        self._failing: dict[tuple[str, str], bool] = {}  # (practice, number) -> its last verdict failed
        self._sequence = itertools.count()
        self._loop: task.LoopingCall | None = None
        self._next_flush: dt.datetime | None = None
        self._plans: dict[tuple, list[watch.PlannedWatch]] = {}  # (practice, version, cap, day) -> its plan
        self.ready: defer.Deferred = defer.succeed(None)

    # --- service -------------------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.ready = d = self._run(self._store.interrupted, self._now())
        d.addCallback(self._after_restart)
        d.addCallback(lambda _: self._run(self._store.latest))
        d.addCallback(self._seed)
        d.addCallback(lambda _: self._alerts.flush())
        d.addErrback(lambda f: logger.error("forwarding watch: state not reloaded: %s", f.getErrorMessage()))
        if not self.settings.enabled:
            logger.info("forwarding watch disabled (watch.enabled is false): no watch call goes out")
            return
        if self._shared:
            self._returns_loop = task.LoopingCall(self._poll_returns)
            self._returns_loop.clock = self._reactor
            self._returns_loop.start(RETURNS_EVERY_S, now=False).addErrback(
                lambda f: logger.error("forwarding watch: calls back no longer read: %s", f.getTraceback()))
        self._loop = task.LoopingCall(self.tick)
        self._loop.clock = self._reactor
        self._when_ready().addCallback(self._read_schedule).addErrback(
            lambda f: f.trap(defer.CancelledError))  # stopped before the workers were ready

    def _read_schedule(self, _: Any) -> None:
        if self.running and self._loop is not None and not self._loop.running:
            self._loop.start(self.settings.tick_seconds, now=False).addErrback(
                lambda f: logger.error("forwarding watch stopped: %s", f.getTraceback()))

    def stopService(self):
        super().stopService()
        for loop in (self._loop, self._returns_loop):
            if loop is not None and loop.running:
                loop.stop()

    def _after_restart(self, counts: tuple[int, int]) -> None:
        runs, alerts = counts
        if runs or alerts:
            logger.warning("forwarding watch: %d run(s) cut by the last stop closed as interrupted; %d alert(s) "
                           "whose sending was cut are not sent again", runs, alerts)

    def _seed(self, latest: list[RunView]) -> None:
        """The gauge from the store's last verdict of each number (whichever node ran it)."""
        watched = {p for p, d in self._dialplans().items() if d.watch is not None}
        for run in latest:
            if run.practice in watched:
                self._failing[(run.practice, run.number)] = run.state == FAILED
        for practice in watched:
            self._gauge(practice)
            for outcome in watch.OUTCOMES:
                self._metrics.watch_calls.labels(practice, outcome)

    # --- the schedule ----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Start the watches due now (planned since catch_up_minutes ago, not started here yet)."""
        if not self.settings.enabled or not self.running:
            return
        now = self._now()
        leads = self._leads()
        if self._next_flush is None or now >= self._next_flush:
            self._next_flush = now + ALERT_RETRY
            if leads:
                self._alerts.flush()  # alerts a gateway refused, tried again
            # The verdicts of every node, so that all nodes' gauges say the same thing.
            self._run(self._store.latest).addCallback(self._seed).addErrback(
                lambda f: logger.warning("forwarding watch: verdicts not read: %s", f.getErrorMessage()))
        if not leads:  # another node plans and places the watch calls
            return
        since = now - dt.timedelta(minutes=self.settings.catch_up_minutes)
        for key, at in list(self._seen.items()):
            if at < now - SEEN_KEEP:
                del self._seen[key]
        for dialplan in self._dialplans().values():
            if dialplan.watch is None:
                continue
            for planned in self._due(dialplan, since, now + dt.timedelta(seconds=1)):
                if planned.key in self._seen:
                    continue
                self._seen[planned.key] = planned.at
                try:
                    d = self._start(dialplan, planned, SCHEDULE)
                except WatchRefused as exc:
                    d = defer.fail(exc)
                d.addErrback(self._skipped, dialplan.practice, planned.number.call)

    def _due(self, dialplan: Dialplan, since: dt.datetime, until: dt.datetime) -> list[watch.PlannedWatch]:
        """The watches planned in [since, until), from each local day's plan, computed once per day
        and version of the rules (the reactor reads the schedule every tick)."""
        tz, cap = dialplan.calendar.timezone, self.cap(dialplan)
        out = []
        for day_start, day_end in sorted({watch.local_day_bounds(tz, since), watch.local_day_bounds(tz, until)}):
            key = (dialplan.practice, dialplan.version, cap, day_start)
            if key not in self._plans:
                if len(self._plans) > PLANS_KEPT:
                    self._plans.clear()
                self._plans[key] = watch.plan(dialplan, day_start, day_end, cap)
            out += [w for w in self._plans[key] if since <= w.at < until]
        return out

    @staticmethod
    def _skipped(failure, practice: str, number: str) -> None:
        if failure.check(WatchRefused):
            logger.warning("forwarding watch of %s (%s) skipped: %s", practice, mask_number(number),
                           failure.getErrorMessage())
        else:
            logger.error("forwarding watch of %s (%s) not started: %s", practice, mask_number(number),
                         failure.getErrorMessage())

    def cap(self, dialplan: Dialplan) -> int:
        """Calls a day for the practice: the dialplan's, within the settings' ceiling."""
        return min(dialplan.watch.max_calls_per_day, self.settings.max_calls_per_day) if dialplan.watch else 0

    def run_now(self, practice: str, number: str | None, by: str) -> "defer.Deferred[RunView]":
        """A watch of `number` (None: the practice's first) started at once for `by`; fires with the
        run once it is stored, or fails with WatchRefused (its message is French)."""
        try:
            dialplan = self._dialplans().get(practice)
            if not self.settings.enabled:
                raise WatchRefused("la veille des renvois est désactivée dans les réglages (watch.enabled)")
            if not self._leads():
                raise WatchRefused(NOT_LEADING)
            if dialplan is None or dialplan.watch is None:
                raise WatchRefused("ce cabinet n'a pas de veille de renvoi dans ses règles (section watch)")
            spec = dialplan.watch
            chosen = next((n for n in spec.numbers if number in (None, n.call)), None)
            if chosen is None:
                raise WatchRefused("ce numéro n'est pas surveillé pour ce cabinet")
            now = self._now()
            if not watch.allowed(spec, dialplan.calendar_for(chosen.site), now):
                raise WatchRefused("le cabinet est ouvert : la ligne n'est renvoyée que hors des heures "
                                   "d'ouverture, et l'appel de test sonnerait au cabinet")
            planned = watch.PlannedWatch(practice, chosen, now, now, now)
            return self._start(dialplan, planned, by,
                               key=f"{practice}|{chosen.call}|asked|{now.isoformat()}|{secrets.token_hex(4)}")
        except WatchRefused as exc:
            return defer.fail(exc)

    def _start(self, dialplan: Dialplan, planned: watch.PlannedWatch, trigger: str,
               key: str | None = None) -> "defer.Deferred[RunView]":
        number = planned.number
        if number.call in self._calls.numbers_under_way() or any(
                r.number == number.call for r in self._runs.values()):
            raise WatchRefused("un appel de test de ce numéro est déjà en cours")
        if len(self._runs) >= self.settings.max_in_flight:
            raise WatchRefused(f"{len(self._runs)} appels de test sont déjà en cours (watch.max_in_flight)")
        busy = self._calls.callers_under_way() | {r.caller for r in self._runs.values()}
        caller = watch.caller_for(next(self._sequence), self._calls.settings.callers, busy)
        if caller is None:
            raise WatchRefused("tous les numéros de la plage de test sont en cours d'appel (watch.caller_range)")
        now = self._now()
        day = watch.local_day_bounds(dialplan.calendar.timezone, now)
        d = self._run(self._store.start_run, key or planned.key, dialplan.practice, number.call, number.returns_on,
                      caller, secrets.token_hex(3), trigger, planned.at, now, day, self.cap(dialplan))
        d.addErrback(_not_leading)

        def started(run: RunView | None) -> RunView | None:
            if run is None:
                logger.info("forwarding watch %s of %s: already run (this slot was claimed)", planned.key,
                            dialplan.practice)
                return None
            self._runs[run.id] = run
            self._go(run, dialplan, number)
            return run

        return d.addCallback(started)

    # --- one run ----------------------------------------------------------------------------------------

    def _go(self, run: RunView, dialplan: Dialplan, number: WatchedNumber) -> None:
        d = self._attempts(run, dialplan, number)
        d.addErrback(lambda f: logger.error("forwarding watch %s of %s broke off: %s", run.id, run.practice,
                                            f.getTraceback()))
        d.addBoth(self._gone, run.id)

    def _gone(self, _: Any, run_id: int) -> None:
        self._runs.pop(run_id, None)
        for n in (1, 2):
            self._dialled.pop((run_id, n), None)

    @defer.inlineCallbacks
    def _attempts(self, run: RunView, dialplan: Dialplan, number: WatchedNumber):
        spec = dialplan.watch
        outcomes: list[str] = []
        last = AttemptResult(watch.NOT_PLACED)
        for n in (1, 2):
            if n == 2:
                yield task.deferLater(self._reactor, spec.retry_after_s, lambda: None)
                if not (self.settings.enabled and self.running):  # stopped meanwhile: nothing learnt, no alert
                    yield self._run(self._store.finish, run.id, INTERRUPTED, last.outcome, self._now())
                    return
                yield self._wait_number_free(number.call)
                if self._leads():
                    try:
                        yield self._run(self._store.add_attempt, run.id, n, self._now())
                    except Fenced:
                        pass
            if not self._leads():  # the lead went to another node: no call from here any more
                logger.warning("forwarding watch %s of %s: this node does not lead the watch any more: "
                               "interrupted, no call placed", run.id, run.practice)
                yield self._run(self._store.finish, run.id, INTERRUPTED, last.outcome, self._now())
                return
            self._dialled[(run.id, n)] = self._reactor.seconds()
            last = yield self._calls.place(AttemptRequest(f"{run.id}-{n}", run.practice, number.call,
                                                          number.returns_on, run.caller, run.token, spec.timeout_s))
            if self._shared and last.outcome not in (watch.PASSED, watch.NOT_PLACED):
                last = yield self._returned_elsewhere(run.id, n, last)
            outcomes.append(last.outcome)
            self._metrics.watch_calls.labels(run.practice, last.outcome).inc()
            yield self._run(self._store.end_attempt, run.id, n, last.outcome, self._now(), last.sip_code, last.rang,
                            _ms(last.rtt_s), last.name_kept)
            if watch.after_attempt(outcomes, retry_possible=self.running) != watch.RETRY:
                break
            logger.info("forwarding watch %s of %s: %s; trying once more in %.0f s", run.id, run.practice,
                        last.outcome, spec.retry_after_s)
        passed = outcomes[-1:] == [watch.PASSED]
        if last.outcome == watch.NOT_PLACED:  # our media plane's fault: nothing learnt of the line
            yield self._run(self._store.finish, run.id, INTERRUPTED, last.outcome, self._now())
            logger.error("forwarding watch %s of %s: the call could not be placed (no media worker had room): "
                         "no verdict", run.id, run.practice)
            return
        alerts = () if passed else self._contacts(spec)
        view = yield self._run(self._store.finish, run.id, PASSED if passed else FAILED, last.outcome, self._now(),
                               _ms(last.rtt_s), alerts)
        self._failing[(run.practice, run.number)] = not passed
        self._gauge(run.practice)
        if passed:
            logger.info("forwarding watch %s of %s passed: the call came back in %.1f s", run.id, run.practice,
                        last.rtt_s or 0.0)
            return
        logger.error("forwarding watch %s of %s FAILED: %s after %d attempt(s); alerting %d contact(s)", run.id,
                     run.practice, last.outcome, len(outcomes), len(view.alerts))
        yield self._alerts.flush()

    # --- calls back that reached another node (several nodes) ------------------------------------------

    def _poll_returns(self) -> Any:
        if not self._dialled:
            return None
        d = self._run(self._store.returns, sorted({run_id for run_id, _ in self._dialled}))
        d.addCallback(self._returns_read)
        d.addErrback(lambda f: logger.warning("forwarding watch: calls back not read: %s", f.getErrorMessage()))
        return d

    def _returns_read(self, rows) -> None:
        for run_id, n, at, name_kept in rows:
            dialled = self._dialled.get((run_id, n))
            if dialled is not None:
                self._calls.returned(f"{run_id}-{n}", at.timestamp() - dialled, name_kept)

    @defer.inlineCallbacks
    def _returned_elsewhere(self, run_id: int, n: int, last: AttemptResult):
        """`last`, or a pass when another node wrote this attempt's call back (read for a moment:
        that node's release of the call back may have ended our leg before it wrote it)."""
        waited = 0.0
        while True:
            rows = yield self._run(self._store.returns, [run_id])
            for _, got, at, name_kept in rows:
                if got == n and (run_id, n) in self._dialled:
                    rtt = max(0.0, at.timestamp() - self._dialled[(run_id, n)])
                    logger.info("forwarding watch %s-%d: the call came back at another node after %.1f s", run_id,
                                n, rtt)
                    return AttemptResult(watch.PASSED, rtt_s=round(rtt, 3), rang=last.rang, name_kept=name_kept)
            if waited >= RETURN_GRACE_S:
                return last
            yield task.deferLater(self._reactor, 0.5, lambda: None)
            waited += 0.5

    @defer.inlineCallbacks
    def _wait_number_free(self, number: str):
        """Until the first attempt's leg has ended (at most the guard): one call to a number at once."""
        waited = 0.0
        while number in self._calls.numbers_under_way() and waited < watch.GUARD_S * 2:
            yield task.deferLater(self._reactor, 1.0, lambda: None)
            waited += 1.0

    def _contacts(self, spec) -> tuple[tuple[str, str], ...]:
        """Who a failure alerts, on the channels this service has: the practice's, then the secretariat's."""
        wanted = [("email", e) for e in spec.emails] + [("sms", n) for n in spec.sms] + list(self._secretariat)
        return tuple(c for c in dict.fromkeys(wanted) if c[0] in self._alerts.channels)

    def _gauge(self, practice: str) -> None:
        verdicts = [failing for (p, _), failing in self._failing.items() if p == practice]
        self._metrics.watch_failing.labels(practice).set(1 if any(verdicts) else 0 if verdicts else float("nan"))

    def under_way(self) -> list[RunView]:
        return list(self._runs.values())

    def _now(self) -> dt.datetime:
        return utc_from_clock(self._reactor)


def _not_leading(failure) -> None:
    failure.trap(Fenced)  # the store refused the claim: another node leads the watch now
    raise WatchRefused(NOT_LEADING)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))
