"""A node lost with calls on it, on one real PostgreSQL: node A (a real process holding its lease,
its call records written through the real repository) is killed with SIGKILL; node B, a real
`callrouter serve`, leads the reaper and closes A's records: the caller waiting in A's queue
becomes a callback task put in B's line and listed by B's API, the bridged call and the withheld
caller are recorded `node_lost`. While A lives, B touches none of them."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from argon2 import PasswordHasher

from callrouter.auth import passwords
from callrouter.auth.sealing import KeyFileBox
from callrouter.auth.totp import code_at
from callrouter.devtools.serve import CLI, ServeProcess, base_config
from callrouter.ports import Actor
from callrouter.store.calls import CallRepository
from callrouter.store.db import Database
from callrouter.store.reaping import NOTE, task_id_for
from callrouter.store.tasks import TaskRepository
from callrouter.store.testing import fresh_database
from tests.app.conftest import DIALPLAN, NUMBER
from tests.cluster.lost_node_child import PATIENT, WRITTEN
from tests.cluster.support import ROOT, until
from tests.factories import REPO
from tests.needs import missing

LEASE_S, RENEW_S, REAP_AFTER_S = 3.0, 0.5, 2.0
A, B = "node-a", f"node-b-{uuid.uuid4().hex[:8]}"  # B: its own MQTT topics, whatever else runs
PRACTICE, QUEUE = "e2e-test", "general"
PASSWORD = "correct horse battery staple"
KINDS = ("queued", "bridged", "withheld")


@pytest.fixture(scope="module")
def prompts_built():
    subprocess.run([CLI, "prompts", "build"], cwd=REPO, check=True, capture_output=True, timeout=300)


@pytest.fixture
def nodes(request, tmp_path, prompts_built):
    """Node B (a real `callrouter serve`, the grace `request.param` or REAP_AFTER_S), node A (a
    process holding its lease, its records written), and a way to start node A again."""
    reap_after = getattr(request, "param", REAP_AFTER_S)
    with fresh_database("postgresql", tmp_path) as db:
        (tmp_path / "dialplans").mkdir()
        (tmp_path / "dialplans" / "e2e.yaml").write_text(DIALPLAN.format(number=NUMBER))
        config = base_config(tmp_path, tmp_path / "dialplans", REPO / "prompts", workers=1)
        config.update(database_url=db.url, node=B, cluster={"lease_seconds": LEASE_S, "renew_seconds": RENEW_S,
                                                            "reap_after_seconds": reap_after})
        svc = ServeProcess(tmp_path, config)
        children: list[subprocess.Popen] = []

        def start_a() -> subprocess.Popen:
            child = subprocess.Popen([sys.executable, "-m", "tests.cluster.lost_node_child", db.url, A, str(LEASE_S),
                                      str(RENEW_S), PRACTICE, QUEUE], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=(tmp_path / f"node-a-{len(children)}.log").open("w"), text=True)
            children.append(child)
            return child

        try:
            svc.start()
            yield db, svc, start_a(), start_a
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait(30)
            stray = svc.stop()
            assert not stray, f"processes left running after stop: {stray}"


def sign_in(svc: ServeProcess, db: Database) -> str:
    """A supervisor (her TOTP secret sealed with the service's key file) signed in: a bearer token."""
    from callrouter.store.users import UserRepository

    hasher = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        box = KeyFileBox(svc.root / "var" / "secrets.key")
        secret = UserRepository(db, totp_box=box).add(Actor("test", "127.0.0.1"), "sophie", "Sophie", "supervisor",
                                                      PASSWORD, dt.datetime.now(dt.timezone.utc)).totp_secret
    finally:
        passwords._hasher = hasher
    body = {"username": "sophie", "password": PASSWORD, "totp": code_at(secret, dt.datetime.now(dt.timezone.utc))}
    return api(svc, "POST", "/api/login", body=body)["token"]


def api(svc: ServeProcess, method: str, path: str, token: str | None = None, body: dict | None = None):
    request = urllib.request.Request(f"http://127.0.0.1:{svc.config['http']['port']}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def subscribe(path, topic: str) -> subprocess.Popen:
    """The real broker's messages on `topic`, one JSON payload a line (Mosquitto's own client)."""
    if shutil.which("mosquitto_sub") is None:
        missing("mosquitto_sub (Debian mosquitto-clients) is not installed")
    child = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", "1883", "-q", "1", "-t", topic],
                             stdout=path.open("w"), stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # subscribed before anything is published
    if child.poll() is not None:
        missing("no MQTT broker at 127.0.0.1:1883")
    return child


def ended(path) -> list[tuple]:
    out = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event.get("state") == "ended":
            out.append((event["call_id"], event["outcome"], event.get("cause")))
    return out


def records(db: Database) -> dict:
    repo = CallRepository(db)
    return {k: repo.get(f"{A}-{k}") for k in KINDS}


def test_a_node_killed_with_calls_on_it_leaves_a_task_and_node_lost_records_on_the_survivor(nodes):
    db, svc, lost, _ = nodes
    svc.wait_metric('callrouter_cluster_leading{role="reaper"}', lambda v: v == 1, timeout=30)
    assert lost.stdout.readline().strip() == WRITTEN
    # A lives: more than a lease and the grace later, its calls are still its own.
    time.sleep(LEASE_S + REAP_AFTER_S + 2 * RENEW_S)
    assert all(r.ended_at is None for r in records(db).values())
    assert svc.metrics()['callrouter_calls_reaped_total{kind="callback"}'] == 0

    events = subscribe(svc.root / "events.txt", f"callrouter/{B}/calls/+/state")
    lost.send_signal(signal.SIGKILL)
    lost.wait(30)
    until(lambda: all(r.ended_at is not None for r in records(db).values()), "node B to close node A's calls",
          bound_s=LEASE_S + REAP_AFTER_S + 30)
    # Each call is ended on the events too, by B (A said nothing more of them).
    until(lambda: len(ended(svc.root / "events.txt")) == 3, "the three calls ended on MQTT", bound_s=30)
    assert sorted(ended(svc.root / "events.txt")) == [
        (f"{A}-bridged", "failed", "node_lost"), (f"{A}-queued", "callback_requested", "node_lost"),
        (f"{A}-withheld", "failed", "node_lost")]
    events.kill()
    events.wait(10)
    got = records(db)
    assert (got["queued"].outcome, got["queued"].cause) == ("callback_requested", "node_lost")
    assert (got["bridged"].outcome, got["bridged"].cause) == ("failed", "node_lost")
    assert (got["withheld"].outcome, got["withheld"].cause) == ("failed", "node_lost")
    assert all(leg.ended_at is not None for r in got.values() for leg in r.legs)

    task = TaskRepository(db).get(task_id_for(f"{A}-queued"))
    assert (task.source, task.number, task.practice, task.queue, task.state, task.note) == (
        "node_lost", PATIENT, PRACTICE, QUEUE, "open", NOTE)
    assert [t.call_id for t in TaskRepository(db).pending(dt.datetime.now(dt.timezone.utc))] == [f"{A}-queued"]
    metrics = svc.metrics()
    assert metrics['callrouter_calls_reaped_total{kind="callback"}'] == 1
    assert metrics['callrouter_calls_reaped_total{kind="node_lost"}'] == 2
    # In B's line (nobody covers the queue here, so it waits there), and in B's API.
    svc.wait_metric(f'callrouter_queue_waiting{{practice="{PRACTICE}",queue="{QUEUE}"}}', lambda v: v == 1)
    listed = api(svc, "GET", f"/api/practices/{PRACTICE}/tasks", sign_in(svc, db))["tasks"]
    assert [(t["id"], t["source"], t["call_id"]) for t in listed] == [(task.id, "node_lost", f"{A}-queued")]


@pytest.mark.parametrize("nodes", [8.0], indirect=True)
def test_a_node_back_under_a_new_epoch_within_the_grace_keeps_its_calls_until_it_dies_for_good(nodes):
    """As a controller restarted with its media service alive: killed, then back under the same
    name (a new epoch) before the grace ran out. Its records are its own again; a dead node's
    would have been closed meanwhile. Killed again and not restarted, they are closed."""
    db, svc, lost, start_a = nodes
    grace = 8.0
    svc.wait_metric('callrouter_cluster_leading{role="reaper"}', lambda v: v == 1, timeout=30)
    assert lost.stdout.readline().strip() == WRITTEN
    lost.send_signal(signal.SIGKILL)
    lost.wait(30)
    back = start_a()
    assert back.stdout.readline().strip() == WRITTEN  # it holds its lease again, under a new epoch
    time.sleep(LEASE_S + grace + 4 * RENEW_S)  # longer than a node gone for good waits
    assert all(r.ended_at is None for r in records(db).values())
    assert svc.metrics()['callrouter_calls_reaped_total{kind="node_lost"}'] == 0

    back.send_signal(signal.SIGKILL)
    back.wait(30)
    until(lambda: all(r.ended_at is not None for r in records(db).values()), "node B to close node A's calls",
          bound_s=LEASE_S + grace + 30)
    assert records(db)["queued"].outcome == "callback_requested"
