"""A bounded fuzz campaign (callrouter/devtools/sipfuzz.py) against one real `callrouter serve`:
a few thousand mutated INVITE, REGISTER and BYE messages to the edge (UDP and TCP from the trunk,
UDP from outsiders) and to each worker's own port, in bursts; after each burst nothing crashed,
nothing hangs, every worker takes as many calls at once as before and a patient's SIPp call
through the edge is answered with audio. The long run is `make fuzz-sip`."""

from __future__ import annotations

import pytest

from callrouter.devtools.sipfuzz import campaign, shares, targets
from callrouter.devtools.sipfuzz_service import NUMBER, ServiceChecks
from tests.hostile.conftest import hostile_service

pytestmark = pytest.mark.integration

SEED = 4475
COUNT = 3000
BURST = 1000


@pytest.fixture(scope="module")
def served(tmp_path_factory, prompts_built):
    with hostile_service(tmp_path_factory.mktemp("fuzz")) as svc:
        yield svc


def test_thousands_of_mutated_messages_leave_every_process_slot_and_call_working(served, tmp_path):
    checks = ServiceChecks(served, NUMBER, tmp_path)
    assert all(free >= 2 for free in checks.slots.values()), checks.slots
    chosen = targets(served)
    wanted = shares(COUNT, [t.name for t in chosen])
    report = campaign(chosen, SEED, wanted, BURST, checks)
    assert report.problems == []
    assert report.sent == wanted and sum(report.sent.values()) == COUNT
    assert checks.calls == report.bursts  # a patient's call after every burst, each answered
    for name, outcomes in report.outcomes.items():
        # the mutations were heard, not all thrown away: some answered, some refused or dropped
        answered = sum(n for outcome, n in outcomes.items() if outcome[:1] in "1234567")
        assert answered > 0 and outcomes.get("drop", 0) > 0, (name, outcomes)
