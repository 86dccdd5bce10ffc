"""A node reduced to its lease, with its metrics on loopback: for the test of nodes sharing one
PostgreSQL without the shared desk.

python -m tests.cluster.unshared_child DB_URL NODE SHARED_DESK(0|1) METRICS_PORT

SIGTERM stops it cleanly (its lease given up).
"""

import logging
import sys

from prometheus_client import CollectorRegistry, start_http_server
from twisted.internet import reactor

from callrouter.cluster.build import build_cluster
from callrouter.cluster.settings import ClusterSettings
from callrouter.escalation.service import in_thread_pool
from callrouter.store.db import Database
from callrouter.store.leases import lease_store


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    db_url, node, shared, port = sys.argv[1:5]
    registry = CollectorRegistry()
    start_http_server(int(port), addr="127.0.0.1", registry=registry)
    cluster = build_cluster(ClusterSettings(3.0, 0.5, shared_desk=shared == "1"), node,
                            lease_store(Database.from_url(db_url)), reactor, in_thread_pool(reactor), registry)
    reactor.callWhenRunning(cluster.service.startService)
    reactor.addSystemEventTrigger("before", "shutdown", cluster.service.stopService)
    reactor.run()


if __name__ == "__main__":
    main()
