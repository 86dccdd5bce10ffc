"""The observing part of the service tree, built from the settings (called by callrouter.app only)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from twisted.application.service import IService
from twisted.internet import threads

from callrouter.config import Settings
from callrouter.domain.model import Dialplan
from callrouter.metrics import Metrics
from callrouter.observe.probes import Probe, Probes, database_check, edge_check, under
from callrouter.observe.resources import ChildResources, group_members
from callrouter.observe.samplers import Book, StateSampler
from callrouter.observe.shedding import ShedSampler
from callrouter.observe.service_level import ServiceLevelSink, params_of


def service_level_sink(metrics: Metrics, reactor: Any,
                       dialplan_of: Callable[[str], Dialplan | None]) -> ServiceLevelSink:
    """The events sink counting the service level (give it to build_events' `also`)."""
    return ServiceLevelSink(metrics, reactor, lambda practice: params_of(dialplan_of(practice)))


def observers(settings: Settings, metrics: Metrics, dialplans: Callable[[], Mapping[str, Dialplan]], book: Book,
              pool: Any, engine: Any, edge: Any, reactor: Any) -> list[IService]:
    """The samplers and probes to start (after the dialplans, the pool and the edge they read), and
    the memory and CPU of the workers and the edge registered in the metrics.
    `pool`: callrouter.media.pool.MediaPool; `engine`: the database's SQLAlchemy engine;
    `edge`: callrouter.sip.service.KamailioService, or None without the edge."""
    probes = [Probe("database", database_check(engine), metrics.database_up)]
    certificate = None
    refused = None
    if edge is not None:
        from callrouter.sip.dispatch import EdgeDispatcher
        from callrouter.sip.registrations import RegistrationsClient
        from callrouter.sip.tls import CERT_NAME

        client = RegistrationsClient(settings.sip.rpc_port, timeout=3.0)
        probes.append(Probe("SIP edge RPC", edge_check(client.call), metrics.edge_up))
        refused = EdgeDispatcher(client, settings.edge, reactor).refused
        if settings.sip.tls_port:
            certificate = under(settings.edge.tls_dir, CERT_NAME)

    def children() -> dict[str, Iterable[int]]:
        out: dict[str, Iterable[int]] = {s.name: [s.pid] for s in pool.status() if s.pid}
        if edge is not None and edge.pid:
            out["kamailio"] = group_members(edge.pid)
        return out

    metrics.registry.register(ChildResources(children))
    guard = lambda: getattr(getattr(pool, "resizer", None), "guard", None)  # noqa: E731 - the pool's, once it has one
    shedding = ShedSampler(guard, metrics, refused)
    shedding.clock = reactor
    return [StateSampler(metrics, dialplans, book, reactor), shedding,
            Probes(probes, reactor, lambda f: threads.deferToThreadPool(reactor, reactor.getThreadPool(), f),
                   certificate=certificate, tls_expiry=metrics.tls_expiry)]
