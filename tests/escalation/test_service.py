"""build_escalation wires the real reactor, thread pool and channels; the outbox file channel."""

import json

import pytest_twisted
from prometheus_client import CollectorRegistry
from twisted.internet import reactor

from callrouter.escalation.service import build_escalation
from callrouter.store.escalations import EscalationRepository
from callrouter.store.testing import fresh_database
from callrouter.domain.model import EscalationStep, EscalationTier
from tests.escalation.support import SETTINGS, dialplan as base_dialplan, replace

# Named practitioners: the wall clock decides who is on call, and this test must not depend on it.
TIER = EscalationTier("urgent", (EscalationStep("sms", "dr-martin"), EscalationStep("email", "dr-martin", wait_s=600)))


def dialplan():
    return base_dialplan(escalation={"urgent": TIER})


@pytest_twisted.inlineCallbacks
def test_the_development_outbox_file_receives_each_message(tmp_path):
    outbox = tmp_path / "var" / "outbox.jsonl"
    settings = replace(SETTINGS, outbox_file=outbox)
    registry = CollectorRegistry()
    with fresh_database("sqlite", tmp_path) as db:
        parts = build_escalation(settings, EscalationRepository(db), lambda practice: dialplan(), reactor, registry)
        parts.engine.startService()
        yield parts.engine.ready
        eid = yield parts.engine.start("call-1", dialplan(), "urgent", "+33612345678")
        yield parts.engine.settled(eid)
        parts.engine.stopService()
        lines = [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines()]
        assert [(m["channel"], m["to"]) for m in lines] == [("sms", "+33611111111"), ("email", "martin@example.org")]
        assert lines[0]["key"] == f"esc-{eid}-0-0"
        assert registry.get_sample_value("callrouter_escalations_started_total",
                                         {"practice": "cab", "tier": "urgent"}) == 1
