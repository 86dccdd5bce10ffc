"""Torture messages in the categories of RFC 4475 (tests/hostile/messages/, our own messages) sent
to one real `callrouter serve`: to the edge over UDP and TCP from the trusted trunk, to the edge
from outsiders, and to a media worker's own port. Each gets exactly the answer its README row
documents; after each, the target still answers an OPTIONS; after all of them every process is the
one that was there before, every worker takes as many calls at once as before, and a patient's
SIPp call through the edge is answered with audio."""

from __future__ import annotations

import threading

import pytest

from callrouter.devtools.sipfuzz_service import NUMBER, ServiceChecks
from callrouter.devtools.sipwire import Peer, answers_options, exchange, invite
from tests.hostile.conftest import hostile_service
from tests.hostile.torture import MESSAGES, TARGETS, Case, cases, render

pytestmark = pytest.mark.integration

TRUNK = "127.0.0.1"
REGRESSION_SILENT_INVITE = "regression-invite-the-workers-drop"


@pytest.fixture(scope="module")
def served(tmp_path_factory, prompts_built):
    with hostile_service(tmp_path_factory.mktemp("torture"), TRUNK) as svc:
        yield svc


def peers(svc) -> dict[str, Peer]:
    sip = svc.config["sip"]
    return {"trunk-udp": Peer("127.0.0.1", sip["udp_port"], source=TRUNK),
            "trunk-tcp": Peer("127.0.0.1", sip["tcp_port"], "tcp", source=TRUNK),
            "outsider-udp": Peer("127.0.0.1", sip["udp_port"]),
            "worker-udp": Peer("127.0.0.1", svc.worker_ports()[0])}


def send(peer: Peer, case: Case) -> tuple[str, list[int]]:
    template = case.path.read_bytes()
    tx = exchange(peer, lambda local: render(template, local, peer.host, peer.port, NUMBER), window=1.0,
                  final_timeout=10.0)
    return tx.outcome, tx.statuses


def test_every_message_file_has_its_readme_row_with_an_answer_for_each_target():
    rows = cases()
    files = sorted(p.stem for p in MESSAGES.glob("*.sip"))
    assert sorted(c.name for c in rows) == files
    for case in rows:
        assert set(case.expected) == set(TARGETS) and all(case.expected.values()), case
        assert case.category and case.exercises, case


def test_each_message_gets_its_documented_answer_and_leaves_the_service_whole(served, tmp_path):
    svc = served
    checks = ServiceChecks(svc, NUMBER, tmp_path, trunk_ip=TRUNK)
    assert all(free >= 2 for free in checks.slots.values()), checks.slots
    targets = peers(svc)
    rows = [c for c in cases() if not c.name.startswith("regression-")]
    seen: dict[tuple[str, str], tuple[str, list[int], bool]] = {}

    def run(names: tuple[str, ...], batch: list[Case]) -> None:
        for name in names:
            for case in batch:
                peer = targets[name]
                if name == "outsider-udp":  # one address each: the flood limit is not under test here
                    peer = peer.with_source(f"127.0.44.{rows.index(case) + 1}")
                if name.startswith("trunk"):  # a message the workers drop marks them inactive a while
                    svc.wait_edge_ready(len(checks.workers))
                outcome, statuses = send(peer, case)
                seen[case.name, name] = (outcome, statuses, answers_options(peer))

    # The targets side by side, except the messages that time out at the workers (408): those
    # mark the workers inactive until their next probe, which would turn another message's
    # answer into 503, so they are sent one at a time, last.
    alone = [c for c in rows if c.expected["trunk-udp"] == "408"]
    together = [c for c in rows if c not in alone]
    threads = [threading.Thread(target=run, args=((name,), together)) for name in TARGETS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run(TARGETS, alone)

    wrong = [f"{case.name} at {target}: expected {case.expected[target]}, got {seen[case.name, target][0]} "
             f"{seen[case.name, target][1]}" for case in rows for target in TARGETS
             if seen[case.name, target][0] != case.expected[target]]
    stuck = [f"{name} at {target}: no answer to the OPTIONS after it" for (name, target), (_, _, alive)
             in seen.items() if not alive]
    assert not wrong + stuck, "\n".join(wrong + stuck)
    assert checks() == {"crash": [], "hang": [], "slots": [], "call": []}


def test_invites_the_workers_drop_leave_no_call_load_at_the_edge(served):
    """Regression: an INVITE the edge relays but the workers drop (pjsip parses less than
    Kamailio) timed out on each worker in turn and left its call load counted at the edge; after
    as many as the workers' load limit, every patient's call got 503 for hours."""
    svc = served
    trunk = peers(svc)["trunk-udp"]
    [case] = [c for c in cases() if c.name == REGRESSION_SILENT_INVITE]
    for _ in range(2):  # before the fix each left one unit counted: 4 filled both workers
        svc.wait_edge_ready(len(svc.worker_ports()))
        assert send(trunk, case)[0] == case.expected["trunk-udp"]
        loads = [dest["DEST"]["RUNTIME"]["DLGLOAD"] for s in svc.kamailio_rpc("dispatcher.list")["RECORDS"]
                 for dest in s["SET"]["TARGETS"]]
        assert loads == [0] * len(svc.worker_ports())
    svc.wait_edge_ready(len(svc.worker_ports()))
    call = exchange(trunk, lambda local: invite(local, trunk.host, trunk.port, NUMBER), window=5)
    assert call.outcome == "200", call.statuses
