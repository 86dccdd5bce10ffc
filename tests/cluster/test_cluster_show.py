"""Two whole nodes on one machine and one PostgreSQL, everything the cluster does at once.

Node A on 127.0.0.11 and node B on 127.0.0.12, each a `callrouter serve` of its own (Kamailio edge,
three pjsua2 workers, controller), registrations in the database, each edge the other's peer, the
shared desk on, a real HTTP SMS gateway on loopback with a path per node. Two secretaries'
softphones (SIPp) REGISTER with their digest, one at each edge. Twelve patients (SIPp) call the
two edges in turn; some press 2 (an emergency: a chain of three SMS starts, and they wait in line
like the others), the others 3.

While calls are bridged and waiting on both nodes, node A (its controller, its workers and its
Kamailio: the whole process group) is killed with SIGKILL. Then:
- the calls answered were offered in the order they joined the line, whichever node held them,
  and no secretary ever had two calls at once (desk_offers, and each softphone's trace);
- node B's calls are untouched: each is answered and ends normally;
- A's bridged calls are recorded `node_lost`, its waiting patients become callback tasks on B;
- every chain is finished by B (which takes the escalation lead once A's lease runs out): one SMS
  per step of each chain at the gateway, none twice, the steps A had not sent sent by B.

The reaper's grace is 2 s here (30 s by default): it must outlast a controller's restart, and no
controller restarts in this test, so a short one only makes the survivor act sooner.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import time
import uuid
from collections import Counter

import pytest
from sqlalchemy import select

from callrouter.devtools import sipp as scen
from callrouter.devtools.serve import ServeProcess, free_udp_port
from callrouter.store.models import CallbackTask, CallRecord, DeskOffer, Escalation, EscalationStepRecord
from callrouter.store.reaping import task_id_for
from callrouter.store.testing import fresh_database
from tests.app.acd_support import add_secretaries
from tests.app.conftest import prompts_built  # noqa: F401 (a fixture)
from tests.cluster.cluster_support import Secretary, gone, node_config, out_of_order, peer_edges
from tests.cluster.support import Gateway, until
from tests.media.harness import Sipp as MediaSipp
from tests.sip.harness import free_port

pytestmark = pytest.mark.integration

PRACTICE, NUMBER = "cluster-show", "+33100000301"
CALLS = 12
EMERGENCIES = (1, 2, 7, 10)  # which patients press 2: on both nodes
RING_MS, TALK_MS = 300, 2000
LEASE_S, RENEW_S, REAP_AFTER_S = 4.0, 0.5, 2.0
STEP_WAIT_S = 6
RUN = uuid.uuid4().hex[:8]
A, B = f"show-a-{RUN}", f"show-b-{RUN}"  # their own MQTT topics and gateway paths
DIALPLAN = f"""\
practice: {PRACTICE}
name: Cabinet des Deux Serveurs
timezone: Europe/Paris
numbers: ["{NUMBER}"]
hours:
  daily: ["00:00-24:00"]
queues:
  general: {{label: Secrétariat, wrap_up: 1s, announce_interval: 300s}}
ivr:
  triage:
    prompt: triage_menu
    timeout: 4s
    retries: 0
    on_timeout: {{queue: general}}
    options:
      "2": {{reason: urgence, tier: urgent, queue: general}}
      "3": {{reason: rendez-vous, queue: general}}
routes:
  open: {{ivr: triage}}
  closed: {{ivr: triage}}
  holiday: {{ivr: triage}}
  overflow: {{wait_max: 300s, queue_max: 30, then: {{voicemail: true}}}}
practitioners:
  - {{id: dr-garde, name: Dr Hélène Garde, role: médecin de garde, phone: "+33611110001"}}
  - {{id: dr-roux, name: Dr Paul Roux, role: médecin, phone: "+33611110002"}}
on_call:
  backup: dr-roux
  weekly:
    - {{days: mon-sun, hours: "00:00-24:00", who: dr-garde}}
escalation:
  tiers:
    urgent:
      steps:
        - {{sms: on_call, wait: {STEP_WAIT_S}s}}
        - {{sms: backup, wait: {STEP_WAIT_S}s}}
        - {{sms: on_call}}
"""
STEPS = 3


def rows(db, model, *where):
    with db.transaction() as s:
        return list(s.scalars(select(model).where(*where)))


def calls(db) -> list[CallRecord]:
    return rows(db, CallRecord, CallRecord.practice == PRACTICE)


def reaped_by(svc: ServeProcess) -> tuple[float, float]:
    metrics = svc.metrics()
    return tuple(metrics.get(f'callrouter_calls_reaped_total{{kind="{kind}"}}') for kind in ("callback", "node_lost"))


def edge_of(svc: ServeProcess) -> tuple[str, int]:
    return svc.config["sip"]["listen_address"], svc.config["sip"]["udp_port"]


def process_groups(pids) -> set[int]:
    groups = set()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, TypeError):
            groups.add(os.getpgid(pid))
    return groups


def callbacks_offered(svc: ServeProcess) -> float:
    return sum(v for k, v in svc.metrics().items() if k.startswith("callrouter_callback_tasks_total{")
               and 'event="offered"' in k and PRACTICE in k)


def line_of(records, offers) -> str:
    """Each call as it joined the line, with its offers: what an order assertion shows."""
    def stamp(moment) -> str | None:
        return moment and f"{moment:%S.%f}"[:6]

    out = []
    for r in sorted(records, key=lambda r: r.queued_at or r.started_at):
        mine = [(o.secretary, o.node_id[:6], stamp(o.offered_at), o.outcome) for o in offers if o.call_id == r.id]
        out.append(f"{r.id[:8]} {r.node[:6]} queued {stamp(r.queued_at)} offered {stamp(r.offered_at)} "
                   f"{r.outcome} {r.secretary} {mine}")
    return "\n".join(out)


def bridged(r) -> bool:
    return r.answered_at is not None and r.ended_at is None


def waiting(r) -> bool:
    return r.queued_at is not None and r.answered_at is None and r.ended_at is None


@pytest.fixture
def show(tmp_path, prompts_built):  # noqa: F811
    """The two nodes, A started first (so it leads the escalation engine and the reaper), the SMS
    gateway, the two registered secretaries; everything stopped after, nothing left running."""
    gateway = Gateway()
    gateway.start()
    usernames = ("anne", "berthe")
    agents = {f"{PRACTICE}/*": list(usernames)}
    nodes: list[ServeProcess] = []
    started: list = []
    with fresh_database("postgresql", tmp_path / "pg") as db:
        configs = []
        # Short directories (the node names are long): a unix socket's path has a limit (var/media.sock).
        for name, address in ((A, "127.0.0.11"), (B, "127.0.0.12")):
            config = node_config(tmp_path / address[-1], address, db.url, DIALPLAN, agents)
            config["node"] = name
            config["cluster"] = {"shared_desk": True, "lease_seconds": LEASE_S, "renew_seconds": RENEW_S,
                                 "reap_after_seconds": REAP_AFTER_S}
            config["escalation"] = {"enabled": True, "ack_secret": "test-secret", "sms_url": gateway.url(name)}
            config["controller"]["outbound_trunk"] = f"127.0.0.1:{free_udp_port()}"  # patients' lines: no answer
            configs.append(config)
        peer_edges(configs)
        try:
            for config in configs:
                svc = ServeProcess(tmp_path / config["media"]["bind"][-1], config)
                nodes.append(svc.start())
                svc.wait_edge_ready(3)
                svc.wait_log("shared desk: node")
                svc.wait_metric("callrouter_node_lease_held", lambda v: v == 1)
                if svc is nodes[0]:
                    add_secretaries(db.url, {u: PRACTICE for u in usernames},
                                    key_file=tmp_path / "keys" / "secrets.key")
                    svc.wait_metric('callrouter_cluster_leading{role="escalation"}', lambda v: v == 1)
            secretaries = []
            for username, svc in zip(usernames, nodes):  # one registered at each edge
                sec = Secretary(username, free_port(), edge_of(svc))
                sec.register(tmp_path)
                started.append(sec.take_calls(tmp_path, RING_MS, TALK_MS, most=40))
                secretaries.append(sec)
            for svc in nodes:  # each desk sees both, whichever edge they registered at
                svc.wait_metric("callrouter_secretaries_registered", lambda v: v == 2, timeout=30)
            yield db, gateway, nodes, secretaries, started
        finally:
            for run in started:
                run.kill()
            edges = process_groups([svc.children().get("kamailio") for svc in nodes if svc.proc.poll() is None])
            stray = [pid for svc in nodes for pid in svc.stop()]
            for group in edges:  # an edge whose controller could not stop it
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
                    stray.append(group)
            gateway.stop()
            assert not stray, f"processes left running after stop: {stray}"


def test_two_nodes_serve_in_one_order_and_a_killed_node_leaves_the_other_to_finish_its_work(show, tmp_path):
    db, gateway, (a, b), secretaries, started = show
    patients: dict[str, tuple[ServeProcess, MediaSipp]] = {}
    for i in range(CALLS):
        svc = (a, b)[i % 2]
        caller = f"+336200{i:05d}"
        workdir = tmp_path / f"patient{i}"
        workdir.mkdir()
        digit = "2" if i in EMERGENCIES else "3"
        # A call of B's bridged to the secretary registered at A's edge goes through that edge: once A
        # is killed her hang-up is lost there (docs/operations.md), and the patient hangs up herself.
        scenario = scen.caller(workdir, f"patient{i}", [("pause", 1500), ("digit", digit)], end="wait_bye_or_bye",
                               wait_bye_ms=120000)
        run = MediaSipp(str(scenario), service=NUMBER, workdir=workdir, timeout_s=200,
                        variables={"rtp_port": str(free_udp_port(even=True)), "caller": caller},
                        extra=["{}:{}".format(*edge_of(svc))])
        patients[caller] = (svc, run)
        started.append(run)
        time.sleep(0.5)  # their order in line is their order of arrival

    def ready_to_kill() -> bool:
        records = calls(db)
        on = {n: [r for r in records if r.node == n] for n in (A, B)}
        chains = rows(db, EscalationStepRecord)
        return (sum(1 for r in records if r.answered_at) >= 4
                and all(any(bridged(r) for r in on[n]) and any(waiting(r) for r in on[n]) for n in (A, B))
                and any(s.state == "sent" for s in chains) and len(rows(db, Escalation)) == len(EMERGENCIES)
                and any(e.state == "active" for e in rows(db, Escalation)))

    until(ready_to_kill, "calls bridged and waiting on both nodes, chains under way", bound_s=120)
    pids = list(a.children().values()) + [a.proc.pid]
    for group in process_groups(pids):  # the node: controller and workers; Kamailio leads its own
        os.killpg(group, signal.SIGKILL)
    a.proc.wait(30)
    killed_at, killed = time.monotonic(), dt.datetime.now(dt.timezone.utc)
    until(lambda: all(gone(pid) for pid in pids), "every process of node A gone", bound_s=30)
    open_on_a = [r.id for r in calls(db) if r.node == A and r.ended_at is None]
    # The secretary registered at A's edge is out of reach through it: her phone registers at B's.
    moved = secretaries[0]
    assert moved.edge[0] == a.config["sip"]["listen_address"]
    started.append(moved.register_elsewhere(tmp_path, edge_of(b), RING_MS, TALK_MS, most=40))

    # A's calls closed by B: within the lease, the grace and a few reconciles (bounded, generous).
    until(lambda: all(r.ended_at for r in calls(db) if r.node == A), "node B to close node A's calls",
          bound_s=LEASE_S + REAP_AFTER_S + 40)
    assert time.monotonic() - killed_at >= REAP_AFTER_S  # never before the grace
    records = {r.id: r for r in calls(db)}
    # A write A had sent before it died may still commit after it (its end of a call that ended
    # just then): such a call ended on its own, before the kill; every other one B closed.
    late = [records[i] for i in open_on_a if records[i].cause != "node_lost"]
    assert all(r.ended_at <= killed for r in late), [(r.outcome, r.cause, r.ended_at, killed) for r in late]
    reaped_calls = [records[i] for i in open_on_a if records[i].cause == "node_lost"]
    lost_bridged = [r for r in reaped_calls if r.answered_at]
    lost_waiting = [r for r in reaped_calls if not r.answered_at]
    assert lost_bridged and lost_waiting, [(r.outcome, r.cause) for r in reaped_calls]
    assert all(r.outcome == "failed" and r.secretary for r in lost_bridged), \
        [(r.outcome, r.secretary) for r in lost_bridged]
    assert all(r.outcome == "callback_requested" for r in lost_waiting), [r.outcome for r in lost_waiting]
    tasks = {t.id: t for t in rows(db, CallbackTask)}
    assert {task_id_for(r.id) for r in lost_waiting} <= set(tasks)
    assert all((tasks[task_id_for(r.id)].source, tasks[task_id_for(r.id)].number) == ("node_lost", r.caller)
               for r in lost_waiting)
    counted = (len(lost_waiting), len(lost_bridged))  # counted once the reaping's transaction is back
    until(lambda: reaped_by(b) == counted, f"node B to count what it reaped, {counted}", bound_s=10)
    # ... and put in B's line: offered to a secretary like any callback.
    until(lambda: callbacks_offered(b) >= 1, "a callback of node A's patient offered by B", bound_s=90)

    # Node B's calls untouched: every one answered, bridged to a secretary, ended normally.
    for caller, (svc, run) in patients.items():
        if svc is b:
            assert run.wait(200) == 0, run.errors()
    until(lambda: all(r.ended_at for r in calls(db)), "every call record closed", bound_s=60)
    records = calls(db)
    mine = [r for r in records if r.node == B]
    assert len(mine) == CALLS // 2
    assert all(r.outcome == "answered" and r.cause != "node_lost" and r.secretary for r in mine), \
        [(r.outcome, r.cause, r.secretary) for r in mine]

    # One order over both nodes: the answered calls were offered in the order they joined the line,
    # each once its row was committed (docs/operations.md, "One team served by several nodes").
    answered = [r for r in records if r.answered_at]
    assert {r.node for r in answered} == {A, B}
    desk_offers = rows(db, DeskOffer)
    broken, waived = out_of_order(records, desk_offers)
    assert not broken, f"{broken} (allowed: {waived})\n" + line_of(records, desk_offers)
    assert any(x.node != y.node and x.queued_at < y.queued_at < x.offered_at for x in answered for y in answered)

    # The chains finished by B: one SMS per step of each chain, none twice.
    until(lambda: all(e.state == "done" for e in rows(db, Escalation)), "every chain finished", bound_s=90)
    chains = rows(db, Escalation)
    steps = rows(db, EscalationStepRecord)
    keys = gateway.keys()
    assert not [k for k, n in Counter(keys).items() if n > 1], keys
    for chain in chains:
        of_chain = [s for s in steps if s.escalation_id == chain.id]
        assert sorted(s.step for s in of_chain) == list(range(STEPS)), of_chain
        for s in of_chain:
            key = f"esc-{chain.id}-{s.round}-{s.step}"
            # a step A was sending when it died stays `unknown` (never sent again); every other
            # step reached the gateway exactly once
            assert (s.state == "unknown") or (s.state == "sent" and key in keys), (s.state, key, keys)
    assert gateway.keys(B), "node B sent the steps A had not"
    assert b.metrics()['callrouter_cluster_leading{role="escalation"}'] == 1
    assert set(gateway.keys(A)) & set(gateway.keys(B)) == set()

    # No secretary offered two calls at once: her offers on the shared desk, and her phone.
    offers = sorted(rows(db, DeskOffer), key=lambda o: o.offered_at)
    for who in {o.secretary for o in offers}:
        hers = [o for o in offers if o.secretary == who]
        assert all(o.ended_at for o in hers[:-1])
        assert all(later.offered_at >= earlier.ended_at for earlier, later in zip(hers, hers[1:])), who
    assert len({o.secretary for o in offers}) == 2
    assert [s.most_at_once() for s in secretaries] == [1, 1]
