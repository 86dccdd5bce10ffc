"""The edge's dispatcher kept in step with the media pool, over Kamailio's JSON-RPC.

Kamailio lists every worker port the pool may use (`kamailio.dispatcher_list`), all inactive, and
its OPTIONS probes (every `sip.worker_probe_interval_s`) activate those that answer and mark the
silent ones inactive. The pool does not wait for them:

- a worker is set active (`dispatcher.set_state ap`) the moment it is ready, retried while
  Kamailio is still starting (`EdgeDispatcher.activate`, and `activate_workers` for the first
  workers of a start);
- a worker the pool retires is disabled (`d`: no new call is dispatched to it, and its probes do
  not bring it back) before it is told to stop taking calls (`EdgeDispatcher.deactivate`); a
  disabled port is set active again when a new worker is ready on it.

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

    @defer.inlineCallbacks
    def _set(self, state: str, port: int):
        """True once the edge took `state` for `port`; False if it did not answer in time."""
        deadline = self._reactor.seconds() + self._timeouts[state]
        destination = worker_destination(self._sip, port)
        while True:
            try:
                yield self._in_thread(self._client.call, "dispatcher.set_state", state, WORKER_SET, destination)
                return True
            except RegistrationsUnavailable as exc:
                if self._reactor.seconds() >= deadline:
                    logger.warning("the edge did not set media worker port %s %s (%s)%s", port,
                                   "active" if state == ACTIVE else "disabled", exc,
                                   "; its OPTIONS probes will" if state == ACTIVE else "")
                    return False
                yield task.deferLater(self._reactor, self._retry, lambda: None)


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
