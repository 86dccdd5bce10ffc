"""A node about to be lost: it holds its lease on the shared PostgreSQL, and once it does it opens
call records through the real repository as its recorder writes them (a caller waiting in a
queue, one talking to a secretary, one with a withheld number in the menu), then says so on its
standard output and keeps renewing until the test kills it.

python -m tests.cluster.lost_node_child DB_URL NODE LEASE_S RENEW_S PRACTICE QUEUE
"""

import datetime as dt
import logging
import sys

from prometheus_client import CollectorRegistry
from twisted.internet import reactor, threads

from callrouter.cluster.build import build_cluster
from callrouter.cluster.settings import ClusterSettings
from callrouter.escalation.service import in_thread_pool
from callrouter.store.calls import CallRepository
from callrouter.store.db import Database
from callrouter.store.leases import lease_store

WRITTEN = "records written"
PATIENT = "+33612345678"


def write(db: Database, node: str, practice: str, queue: str) -> None:
    repo = CallRepository(db, node)
    now = dt.datetime.now(dt.timezone.utc)
    repo.open_call(f"{node}-queued", practice, "+33100000042", PATIENT, now, "w1")
    repo.set_route(f"{node}-queued", "open", "ouvert", now)
    repo.queued(f"{node}-queued", queue, now)
    repo.open_call(f"{node}-bridged", practice, "+33100000042", "+33698765432", now, "w1")
    repo.queued(f"{node}-bridged", queue, now)
    repo.add_leg(f"{node}-bridged", "secretary", "sip:sec@127.0.0.1", now)
    repo.answered(f"{node}-bridged", "sec", now)
    repo.open_call(f"{node}-withheld", practice, "+33100000042", None, now, "w2")


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    db_url, node, lease_s, renew_s, practice, queue = sys.argv[1:7]
    db = Database.from_url(db_url)
    cluster = build_cluster(ClusterSettings(float(lease_s), float(renew_s)), node, lease_store(db), reactor,
                            in_thread_pool(reactor), CollectorRegistry())

    def held(_):
        d = threads.deferToThread(write, db, node, practice, queue)
        d.addCallback(lambda _: print(WRITTEN, flush=True))
        d.addErrback(lambda f: print(f"not written: {f.getErrorMessage()}", flush=True))

    reactor.callWhenRunning(cluster.service.startService)
    reactor.callWhenRunning(lambda: cluster.node.when_held().addCallback(held))
    reactor.run()


if __name__ == "__main__":
    main()
