"""An escalation engine in its own process, for the SIGKILL test.

python -m tests.escalation.engine_child DB_URL GATEWAY_URL (start|resume)
"""

import logging
import sys

from prometheus_client import CollectorRegistry
from twisted.internet import reactor

from callrouter.domain.model import EscalationStep, EscalationTier
from callrouter.escalation.service import build_escalation
from callrouter.store.db import Database
from callrouter.store.escalations import EscalationRepository
from tests.escalation.support import SETTINGS, dialplan, replace

TIER = EscalationTier("urgent", (EscalationStep("sms", "dr-martin", wait_s=1),
                                 EscalationStep("sms", "dr-roux", wait_s=1)))
PLAN = dialplan(escalation={"urgent": TIER})


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    db_url, gateway, mode = sys.argv[1:4]
    settings = replace(SETTINGS, sms_url=gateway, http_timeout_seconds=600.0)
    parts = build_escalation(settings, EscalationRepository(Database.from_url(db_url)), lambda practice: PLAN, reactor,
                             CollectorRegistry())

    def run() -> None:
        parts.engine.startService()
        if mode == "start":
            parts.engine.ready.addCallback(lambda _: parts.engine.start("call-1", PLAN, "urgent", "+33612345678"))

    reactor.callWhenRunning(run)
    reactor.run()


if __name__ == "__main__":
    main()
