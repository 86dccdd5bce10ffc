"""Tell the edge's dispatcher that media workers are up, the moment the pool says so.

Kamailio lists every worker port inactive (see `kamailio.dispatcher_list`) and activates one when
it answers an OPTIONS probe, sent every `sip.worker_probe_interval_s`. Left to the probes alone, a
service that has just started answers 503 "no media worker" until the next probe round (up to that
interval after its workers are ready). So once the pool is ready, each ready worker is set active
(`dispatcher.set_state ap`) over the edge's RPC, retried while Kamailio is still starting; the
probes go on marking dead workers and reviving restarted ones.
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


@defer.inlineCallbacks
def activate_workers(client: RegistrationsClient, sip: SipSettings, ports: Sequence[int], reactor: Any,
                     timeout: float = 30.0, retry: float = 0.2,
                     in_thread: Callable[..., defer.Deferred] = threads.deferToThread):
    """Set each worker port active at the edge; True once all are, False if the edge never
    answered within `timeout` (the probes will activate them, later)."""
    deadline = reactor.seconds() + timeout
    for port in ports:
        while True:
            try:
                yield in_thread(client.call, "dispatcher.set_state", "ap", WORKER_SET, worker_destination(sip, port))
                break
            except RegistrationsUnavailable as exc:
                if reactor.seconds() >= deadline:
                    logger.warning("the edge did not take media worker port %s as active (%s); its "
                                   "OPTIONS probes will", port, exc)
                    return False
                yield task.deferLater(reactor, retry, lambda: None)
    logger.info("edge dispatching to %d media worker(s)", len(ports))
    return True
