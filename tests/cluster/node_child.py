"""A controller node reduced to what this slice coordinates: its lease and the escalation engine,
which runs only while the node leads. For the tests with two nodes on one PostgreSQL.

python -m tests.cluster.node_child DB_URL NODE GATEWAY_URL LEASE_S RENEW_S

SIGTERM stops it cleanly (the lead and the lease given up); SIGKILL and SIGSTOP are the tests'.
"""

import logging
import sys

from prometheus_client import CollectorRegistry
from twisted.application.service import MultiService
from twisted.internet import reactor

from callrouter.cluster.build import ESCALATION, build_cluster
from callrouter.cluster.settings import ClusterSettings
from callrouter.escalation.service import build_escalation, in_thread_pool
from callrouter.escalation.settings import DutyContact
from callrouter.store.db import Database
from callrouter.store.escalations import EscalationRepository
from callrouter.store.leases import LeaderChains, lease_store
from tests.cluster.support import PLAN
from tests.escalation.support import SETTINGS, replace

DUTY_SMS = "+33600000000"


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    db_url, node, gateway, lease_s, renew_s = sys.argv[1:6]
    settings = replace(SETTINGS, sms_url=gateway, http_timeout_seconds=600.0, duty_contact=DutyContact(sms=DUTY_SMS))
    cluster_settings = ClusterSettings(float(lease_s), float(renew_s))
    db = Database.from_url(db_url)
    registry = CollectorRegistry()
    cluster = build_cluster(cluster_settings, node, lease_store(db), reactor, in_thread_pool(reactor), registry)
    lead = cluster.lead(ESCALATION, lambda fence: LeaderChains(db, fence, node, None, cluster_settings.lease_seconds))
    parts = build_escalation(settings, EscalationRepository(db, node), lambda practice: PLAN, reactor, registry,
                             lead=lead)
    top = MultiService()
    cluster.service.setServiceParent(top)
    parts.service.setServiceParent(top)
    reactor.callWhenRunning(top.startService)
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    reactor.run()


if __name__ == "__main__":
    main()
