"""The edge's dispatcher kept in step with the media pool, over Kamailio's JSON-RPC.

Kamailio lists every worker port the pool may use (`kamailio.dispatcher_list`), all inactive, and
its OPTIONS probes (every `sip.worker_probe_interval_s`) activate those that answer and mark the
silent ones inactive. The pool does not wait for them:

- a worker is set active (`dispatcher.set_state ap`) the moment it is ready, retried while
  Kamailio is still starting (`EdgeDispatcher.activate`, and `activate_workers` for the first
  workers of a start);
- a worker the pool retires is disabled (`d`: no new call is dispatched to it, and its probes do
  not bring it back) before it is told to stop taking calls (`EdgeDispatcher.deactivate`); a
  disabled port is set active again when a new worker is ready on it;
- while the controller lags behind its calls, the edge refuses every new call with 503 and
  Retry-After (`EdgeDispatcher.shed`, callrouter.media.overload).

The RPC is a blocking HTTP call: it runs on a thread, never on the reactor.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from twisted.internet import defer, task, threads

from callrouter.sip.kamailio import worker_destination
from callrouter.sip.registrations import RegistrationsClient, RegistrationsUnavailable
from callrouter.sip.settings import SipSettings

logger = logging.getLogger(__name__)

WORKER_SET = 1  # DS_WORKERS in deploy/kamailio/kamailio.cfg
ACTIVE, DISABLED = "ap", "d"
SHED_VARIABLE = "shed"  # $shv(shed) in deploy/kamailio/kamailio.cfg
SHED_TABLE, SHED_REFUSED = "shed", "refused"  # $sht(shed=>refused): the calls refused so


class EdgeDispatcher:
    """callrouter.media.pool_resize.EdgeDispatch over the edge's RPC."""

    def __init__(self, client: RegistrationsClient, sip: SipSettings, reactor: Any,
                 in_thread: Callable[..., defer.Deferred] = threads.deferToThread,
                 activate_timeout: float = 30.0, deactivate_timeout: float = 5.0, retry: float = 0.2) -> None:
        self._client, self._sip, self._reactor, self._in_thread = client, sip, reactor, in_thread
        self._timeouts = {ACTIVE: activate_timeout, DISABLED: deactivate_timeout}
        self._retry = retry

    def activate(self, port: int) -> defer.Deferred:
        return self._set(ACTIVE, port)

    def deactivate(self, port: int) -> defer.Deferred:
        return self._set(DISABLED, port)

    def shed(self, on: bool) -> defer.Deferred:
        """While `on`, the edge refuses every new call at once (503 with Retry-After: the `shed`
        variable of deploy/kamailio/kamailio.cfg); fires True once it does, False if it did not
        answer in time."""
        d = self._call(self._timeouts[DISABLED], "pv.shvSet", SHED_VARIABLE, "int", 1 if on else 0)
        d.addCallback(lambda error: error is None or logger.warning(
            "the edge did not %s refusing new calls (%s)", "start" if on else "stop", error) or False)
        return d

    def refused(self) -> defer.Deferred:
        """Fires with how many new calls the edge refused for the controller's lag since it
        started (the `refused` item of its `shed` table), or None if it did not answer."""
        d = self._in_thread(self._client.call, "htable.get", SHED_TABLE, SHED_REFUSED)
        d.addCallbacks(_item_value, lambda failure: failure.trap(RegistrationsUnavailable) and None)
        return d

    def _set(self, state: str, port: int) -> defer.Deferred:
        """True once the edge took `state` for `port`; False if it did not answer in time."""
        d = self._call(self._timeouts[state], "dispatcher.set_state", state, WORKER_SET,
                       worker_destination(self._sip, port))
        d.addCallback(lambda error: error is None or logger.warning(
            "the edge did not set media worker port %s %s (%s)%s", port, "active" if state == ACTIVE else "disabled",
            error, "; its OPTIONS probes will" if state == ACTIVE else "") or False)
        return d

    @defer.inlineCallbacks
    def _call(self, timeout: float, method: str, *params: Any):
        """None once the edge answered `method`; the last error if it did not within `timeout`."""
        deadline = self._reactor.seconds() + timeout
        while True:
            try:
                yield self._in_thread(self._client.call, method, *params)
                return None
            except RegistrationsUnavailable as exc:
                if self._reactor.seconds() >= deadline:
                    return exc
                yield task.deferLater(self._reactor, self._retry, lambda: None)


def _item_value(result: Any) -> int | None:
    """An htable item's value from `htable.get`'s answer ({"item": {"name": ..., "value": ...}})."""
    try:
        return int(result["item"]["value"])
    except (KeyError, TypeError, ValueError):
        return None


@defer.inlineCallbacks
def activate_workers(client: RegistrationsClient, sip: SipSettings, ports: Sequence[int], reactor: Any,
                     timeout: float = 30.0, retry: float = 0.2,
                     in_thread: Callable[..., defer.Deferred] = threads.deferToThread):
    """Set each worker port active at the edge; True once all are, False if the edge never
    answered within `timeout` (the probes will activate them, later)."""
    edge = EdgeDispatcher(client, sip, reactor, in_thread, activate_timeout=timeout, retry=retry)
    for port in ports:
        done = yield edge.activate(port)
        if not done:
            return False
    logger.info("edge dispatching to %d media worker(s)", len(ports))
    return True
