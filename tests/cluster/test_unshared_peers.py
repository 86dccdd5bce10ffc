"""Nodes on one database without the shared desk are said loudly: two real node processes on the
real PostgreSQL, each with its lease; the node with `cluster.shared_desk` off logs an error naming
the other node once (not at every renewal), gauges it in `callrouter_cluster_unshared_peers` on
its metrics endpoint, and says when it is gone. A node with the shared desk on says nothing."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from callrouter.cluster.peers import UnsharedPeers
from callrouter.store.testing import fresh_database
from tests.cluster.support import ROOT, until

ERROR = "also run on this database, and cluster.shared_desk is off here"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gauge(port: int) -> float | None:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("callrouter_cluster_unshared_peers "):
            return float(line.split()[1])
    return None


@pytest.fixture
def nodes(tmp_path):
    children = []
    with fresh_database("postgresql", tmp_path) as db:
        def start(node: str, shared: bool):
            port, log = free_port(), tmp_path / f"{node}.log"
            child = subprocess.Popen([sys.executable, "-m", "tests.cluster.unshared_child", db.url, node,
                                      "1" if shared else "0", str(port)], cwd=ROOT, stdout=log.open("w"),
                                     stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
            children.append(child)
            return child, port, log

        try:
            yield start
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait(30)


def test_two_nodes_without_the_shared_desk_are_an_error_once_and_a_gauge(nodes):
    a, a_port, a_log = nodes("node-a", shared=False)
    until(lambda: gauge(a_port) == 0.0, "node-a alone, its gauge at 0")
    assert ERROR not in a_log.read_text()
    b, b_port, b_log = nodes("node-b", shared=False)
    until(lambda: gauge(a_port) == 1.0 and gauge(b_port) == 1.0, "each node seeing the other")
    until(lambda: "(s) node-b " + ERROR in a_log.read_text(), "node-a's error naming node-b")
    assert "(s) node-a " + ERROR in b_log.read_text()
    time.sleep(2.0)  # four more renewals (0.5 s), each reading the peers again
    assert gauge(a_port) == 1.0
    b.send_signal(signal.SIGTERM)  # a clean stop gives its lease up at once
    assert b.wait(30) == 0
    until(lambda: gauge(a_port) == 0.0, "node-a's gauge back at 0 once node-b is gone")
    text = a_log.read_text()
    assert text.count(ERROR) == 1  # once for node-b's coming, not at each renewal
    assert "node(s) node-b no longer hold a lease on this database: no other node left" in text


def test_a_node_with_the_shared_desk_says_nothing_of_its_peers(nodes):
    a, a_port, a_log = nodes("node-a", shared=True)
    b, b_port, b_log = nodes("node-b", shared=False)
    until(lambda: gauge(b_port) == 1.0, "node-b (shared desk off) seeing node-a")
    assert gauge(a_port) == 0.0 and ERROR not in a_log.read_text()


def test_a_peer_is_told_when_it_comes_not_while_it_stays():
    values = []
    peers = UnsharedPeers(None, "node-a", None, values.append)
    peers.observe(frozenset())
    peers.observe(frozenset({"node-b"}))
    peers.observe(frozenset({"node-b"}))
    peers.observe(frozenset({"node-b", "node-c"}))
    peers.observe(frozenset())
    assert values == [0.0, 1.0, 1.0, 2.0, 0.0] and peers.seen == frozenset()


def test_each_renewal_reads_the_peers_unless_the_desk_is_shared():
    from prometheus_client import CollectorRegistry
    from twisted.internet import task

    from callrouter.cluster.build import build_cluster
    from callrouter.cluster.settings import ClusterSettings
    from tests.cluster.fakes import FakeDatabase, FakeLeases, sync

    clock = task.Clock()
    clock.advance(1_000_000)
    db = FakeDatabase(clock)
    nodes = {}
    for name, shared in (("a", False), ("b", False), ("c", True)):
        registry = CollectorRegistry()
        cluster = build_cluster(ClusterSettings(10.0, 2.0, shared_desk=shared), name, FakeLeases(db), clock, sync,
                                registry)
        nodes[name] = (cluster, registry)
    gauge = {n: (lambda r=r: r.get_sample_value("callrouter_cluster_unshared_peers")) for n, (_, r) in nodes.items()}
    nodes["a"][0].service.startService()
    assert gauge["a"]() == 0.0
    nodes["b"][0].service.startService()
    nodes["c"][0].service.startService()
    assert gauge["b"]() == 1.0  # a, at its start (c not yet there)
    clock.advance(2.0)
    assert gauge["a"]() == 2.0 and gauge["b"]() == 2.0 and gauge["c"]() == 0.0  # c shares the desk: it does not look
    nodes["b"][0].service.stopService()  # released: gone at once
    clock.advance(2.0)
    assert gauge["a"]() == 1.0
    for name in ("a", "c"):
        nodes[name][0].service.stopService()
