"""Two whole nodes serving one team through the shared desk (cluster.shared_desk), on the real
PostgreSQL: each node a `callrouter serve` of its own with its Kamailio edge and two pjsua2 workers,
node A on 127.0.0.11 and node B on 127.0.0.12; two secretaries with fixed phones (SIPp UAS on
loopback, static sip: URIs in the team) answering every offer and hanging up after a short talk;
patients (SIPp) calling both edges in turn. Every call is answered, in the order the calls joined
the line whichever node holds them, once their rows were committed (desk_offers.seen), and no
secretary ever has two calls at once: not in desk_offers, and not at her phone (each SIPp UAS
sees at most one INVITE at a time)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from callrouter.devtools import sipp as scen
from callrouter.devtools.serve import ServeProcess, free_udp_port
from callrouter.store.db import Database
from callrouter.store.models import CallRecord, DeskOffer
from callrouter.store.testing import fresh_database
from tests.app.conftest import prompts_built  # noqa: F401 (a fixture)
from tests.cluster.cluster_support import most_at_once, node_config, out_of_order, udp_taken
from tests.cluster.support import until
from tests.media.harness import Sipp as MediaSipp
from tests.sip.harness import Sipp, free_port, wait_for

pytestmark = pytest.mark.integration

NUMBER = "+33100000201"
CALLS = 12
TALK_MS = 1500
DIALPLAN = f"""\
practice: shared-desk
name: Cabinet Partagé
timezone: Europe/Paris
numbers: ["{NUMBER}"]
hours:
  daily: ["00:00-24:00"]
queues:
  general: {{label: Secrétariat, wrap_up: 1s, announce_interval: 300s}}
routes:
  open: {{queue: general}}
  closed: {{queue: general}}
  holiday: {{queue: general}}
  overflow: {{wait_max: 300s, queue_max: 30, then: {{voicemail: true}}}}
"""


def phone(root: Path, name: str, port: int) -> Sipp:
    """A secretary's fixed phone: answers each offer after 300 ms, hangs up after TALK_MS."""
    workdir = root / "phones"
    workdir.mkdir(exist_ok=True)
    scenario = scen.softphone(workdir, name)
    plan = scen.softphone_plan(workdir, name, [("answer", 300, TALK_MS)] * CALLS)
    return Sipp(workdir, str(scenario), port=port, calls=CALLS, timeout_s=240,
                extra=["-inf", str(plan), "-set", "rtp_port", str(free_udp_port(even=True))], name=name)


def invites(run: Sipp) -> int:
    return run.received("INVITE")


@pytest.fixture
def pg_url(tmp_path):
    with fresh_database("postgresql", tmp_path / "pg") as db:
        yield db.url, db


def test_two_nodes_serve_one_team_in_one_order_and_never_give_a_secretary_two_calls(tmp_path, pg_url,
                                                                                      prompts_built):  # noqa: F811
    url, db = pg_url
    ports = [free_port(), free_port()]
    phones_uris = [f"sip:sec{i}@127.0.0.1:{port}" for i, port in enumerate(ports)]
    started: list = []
    nodes: list[ServeProcess] = []
    try:
        for name, address in (("a", "127.0.0.11"), ("b", "127.0.0.12")):
            svc = ServeProcess(tmp_path / name, node_config(tmp_path / name, address, url, DIALPLAN, {"*": phones_uris}))
            svc.root.mkdir(parents=True, exist_ok=True)
            nodes.append(svc.start())
        for svc in nodes:
            svc.wait_edge_ready(3)
            svc.wait_log("shared desk: node")
        for svc in nodes:  # both nodes hold their lease before the first call
            svc.wait_metric("callrouter_node_lease_held", lambda v: v == 1)
        phones = [phone(tmp_path, f"sec{i}", port) for i, port in enumerate(ports)]
        started += phones
        for run in phones:
            assert wait_for(lambda: run.proc.poll() is not None or udp_taken(run.port), timeout=10)
        patients = []
        for i in range(CALLS):
            svc = nodes[i % 2]
            edge = (svc.config["sip"]["listen_address"], svc.config["sip"]["udp_port"])
            workdir = tmp_path / f"patient{i}"
            workdir.mkdir()
            scenario = scen.caller(workdir, f"patient{i}", [], end="wait_bye", wait_bye_ms=120000)
            run = MediaSipp(str(scenario), service=NUMBER, workdir=workdir, timeout_s=180,
                            variables={"rtp_port": str(free_udp_port(even=True)), "caller": f"+3361000{i:04d}"},
                            extra=[f"{edge[0]}:{edge[1]}"])
            patients.append(run)
            started.append(run)
            time.sleep(0.8)  # one after the other: their order in line is their order of arrival

        for run in patients:
            assert run.wait(200) == 0, run.errors()

        def records():
            with db.transaction() as s:
                return list(s.scalars(select(CallRecord).where(CallRecord.practice == "shared-desk")))

        until(lambda: sum(1 for r in records() if r.ended_at) == CALLS, "every call record closed", 60)
        calls = records()
        assert {r.node for r in calls} == {n.config["node"] for n in nodes}  # spread over both nodes
        assert all(r.outcome == "answered" and r.secretary in phones_uris for r in calls), \
            [(r.outcome, r.secretary) for r in calls]
        with db.transaction() as s:
            desk_offers = list(s.scalars(select(DeskOffer)))
        broken, waived = out_of_order(calls, desk_offers)  # one order across the nodes, over the rows seen
        assert not broken, f"{broken} (allowed: {waived})"
        # ... and the order was at stake: calls of both nodes waited at the same time.
        assert any(a.node != b.node and a.queued_at < b.queued_at < a.offered_at for a in calls for b in calls)
        assert {r.secretary for r in calls} == set(phones_uris)

        def offers():
            with db.transaction() as s:
                return list(s.scalars(select(DeskOffer).order_by(DeskOffer.offered_at)))

        until(lambda: all(o.ended_at is not None for o in offers()), "every wrap-up over", 30)
        offers = offers()
        for who in phones_uris:  # one active offer at a time, on every node together
            mine = [o for o in offers if o.secretary == who]
            assert all(later.offered_at >= earlier.ended_at for earlier, later in zip(mine, mine[1:]))
        assert sum(1 for o in offers if o.outcome == "answered") == CALLS
        assert {o.node_id for o in offers} == {n.config["node"] for n in nodes}

        assert sum(invites(run) for run in phones) == CALLS
        assert [most_at_once(run) for run in phones] == [1, 1]
    finally:
        for run in started:
            run.kill()
        stray = [pid for svc in nodes for pid in svc.stop()]
        assert not stray, f"processes left running after stop: {stray}"
