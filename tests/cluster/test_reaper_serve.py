"""Two real `callrouter serve` nodes on one real PostgreSQL, real calls: on node A a SIPp patient
talks to the SIPp secretary, another waits in the queue behind her; node A (controller and media
workers) is killed with SIGKILL. Node B, which never had these calls, closes both records: the
waiting patient becomes a callback task (her number, her queue, her place) that B offers to the
secretary's phone and lists in its API; the bridged call is recorded `node_lost` with its
secretary, their legs ended."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import uuid

import pytest

from callrouter.devtools import sipp as scen
from callrouter.devtools.serve import ServeProcess, base_config, free_udp_port
from callrouter.store.calls import CallRepository
from callrouter.store.db import Database
from callrouter.store.reaping import task_id_for
from callrouter.store.tasks import TaskRepository
from callrouter.store.testing import fresh_database
from tests.app.conftest import DIALPLAN, NUMBER
from tests.cluster.cluster_support import gone
from tests.cluster.support import until
from tests.factories import REPO
from tests.cluster.test_reaper_two_nodes import PRACTICE, QUEUE, api, prompts_built, sign_in  # noqa: F401
from tests.media.harness import RtpSink, Sipp

pytestmark = pytest.mark.integration

LEASE_S, RENEW_S, REAP_AFTER_S = 3.0, 0.5, 2.0
TALKING, WAITING = "+33611223344", "+33622334455"
RUN = uuid.uuid4().hex[:8]
A, B = f"node-a-{RUN}", f"node-b-{RUN}"  # their own MQTT topics, whatever else runs on the broker


def node(root, db_url: str, name: str, agents: dict, shared_desk: bool) -> ServeProcess:
    root.mkdir()
    (root / "dialplans").mkdir()
    (root / "dialplans" / "e2e.yaml").write_text(DIALPLAN.format(number=NUMBER))
    config = base_config(root, root / "dialplans", REPO / "prompts", workers=1, agents=agents)
    config.update(database_url=db_url, node=name, cluster={"lease_seconds": LEASE_S, "renew_seconds": RENEW_S,
                                                           "reap_after_seconds": REAP_AFTER_S,
                                                           "shared_desk": shared_desk})
    return ServeProcess(root, config)


@pytest.fixture(params=[False, True], ids=["own-desks", "shared-desk"])
def two_nodes(request, tmp_path, prompts_built):  # noqa: F811
    """Node A seeds the team (one secretary, a SIPp softphone) in the shared database; node B
    reads it from there, with A's key files (every node of one database has the same). Each node
    serves the team from its own desk, or both through the shared desk (`cluster.shared_desk`)."""
    secretary_port = free_udp_port()
    started: list = []
    with fresh_database("postgresql", tmp_path) as db:
        a = node(tmp_path / "a", db.url, A, {"*": [f"sip:secretary@127.0.0.1:{secretary_port}"]}, request.param)
        b = node(tmp_path / "b", db.url, B, {}, request.param)
        b.config["controller"]["outbound_trunk"] = f"127.0.0.1:{free_udp_port()}"  # the patient's line: no answer
        try:
            a.start()
            started.append(a)
            (b.root / "var").mkdir()
            for key in ("audit.key", "secrets.key", "media.key"):
                shutil.copy2(a.root / "var" / key, b.root / "var" / key)
            b.start()
            started.append(b)
            yield db, a, b, secretary_port
        finally:
            for run in Sipp.started:
                run.kill()
            Sipp.started.clear()
            for svc in started:
                stray = svc.stop()
                assert not stray, f"processes left running after stop: {stray}"


def softphone(tmp_path, name: str, port: int) -> Sipp:
    """The secretary's phone: checks the practice of what rings, answers, waits for the service's BYE."""
    workdir = tmp_path / name
    workdir.mkdir()
    return Sipp(str(scen.secretary(workdir, name, PRACTICE)), service=NUMBER,
                variables={"rtp_port": str(RtpSink().port)}, workdir=workdir, timeout_s=150, extra=["-p", str(port)])


def patient(svc: ServeProcess, tmp_path, name: str, caller: str) -> Sipp:
    """Presses 3 (an appointment: the queue), then stays on until the service hangs up."""
    workdir = tmp_path / name
    workdir.mkdir()
    scenario = scen.caller(workdir, name, [("pause", 1500), ("digit", "3")], end="wait_bye", wait_bye_ms=120000)
    return Sipp(str(scenario), remote_port=svc.worker_ports()[0], service=NUMBER,
                variables={"rtp_port": str(RtpSink().port), "caller": caller}, workdir=workdir, timeout_s=150)


def by_caller(db: Database) -> dict:
    from callrouter.ports import CallQuery

    return {r.caller: r for r in CallRepository(db).query(CallQuery(limit=100))}


def test_a_node_killed_during_calls_leaves_its_waiting_patient_a_callback_on_the_survivor(two_nodes, tmp_path):
    db, a, b, secretary_port = two_nodes
    first = softphone(tmp_path, "secretary", secretary_port)
    patient(a, tmp_path, "talking", TALKING)
    until(lambda: (r := by_caller(db).get(TALKING)) is not None and r.answered_at is not None,
          "the first patient bridged to the secretary on node A", bound_s=60)
    patient(a, tmp_path, "waiting", WAITING)
    until(lambda: (r := by_caller(db).get(WAITING)) is not None and r.queued_at is not None,
          "the second patient waiting in node A's queue", bound_s=60)
    workers = list(a.worker_pids().values())
    assert workers

    os.killpg(a.proc.pid, signal.SIGKILL)  # the node: its controller and its media workers
    a.proc.wait(30)
    first.kill()  # her call was cut with the node; her phone is free again
    second = softphone(tmp_path, "secretary-again", secretary_port)
    until(lambda: all(gone(pid) for pid in workers), "node A's workers gone")
    until(lambda: all(r.ended_at is not None for r in by_caller(db).values()), "node B to close node A's calls",
          bound_s=LEASE_S + REAP_AFTER_S + 30)
    records = by_caller(db)
    talking, waiting = records[TALKING], records[WAITING]
    assert (talking.outcome, talking.cause, talking.node) == ("failed", "node_lost", A)
    assert talking.secretary and talking.secretary.startswith("sip:secretary@")
    assert (waiting.outcome, waiting.cause, waiting.queue) == ("callback_requested", "node_lost", QUEUE)
    assert all(leg.ended_at is not None for r in (talking, waiting) for leg in CallRepository(db).get(r.id).legs)

    task = TaskRepository(db).get(task_id_for(waiting.id))
    assert (task.number, task.source, task.queue, task.state) == (WAITING, "node_lost", QUEUE, "open")
    assert task.place_at == waiting.queued_at
    # Offered on B like any callback: her phone rings with the practice, she answers, the patient's
    # line does not, B tells her and hangs up; the task waits for its next attempt.
    assert second.wait(120) == 0, second.errors()
    until(lambda: TaskRepository(db).get(task.id).attempts == 1, "the attempt recorded")
    offered = [v for k, v in b.metrics().items()
               if k.startswith("callrouter_callback_tasks_total{") and 'event="offered"' in k and PRACTICE in k]
    assert offered and offered[0] >= 1, b.metrics()
    assert b.metrics()['callrouter_calls_reaped_total{kind="callback"}'] == 1
    assert b.metrics()['callrouter_calls_reaped_total{kind="node_lost"}'] == 1
    listed = api(b, "GET", f"/api/practices/{PRACTICE}/tasks", sign_in(b, db))["tasks"]
    assert [(t["call_id"], t["source"]) for t in listed] == [(waiting.id, "node_lost")]
    assert "33622334455" not in b.log_tail(100_000)  # masked in every log line
    assert dt.datetime.now(dt.timezone.utc) < task.expires_at
