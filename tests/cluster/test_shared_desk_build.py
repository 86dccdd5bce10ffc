"""Which desk a node gets: its own (the default, and always on SQLite), or the shared one when
`cluster.shared_desk` is set on PostgreSQL."""

from prometheus_client import CollectorRegistry
from twisted.internet import defer
from twisted.internet.task import Clock

from callrouter.cluster.build import build_cluster, build_shared_desk
from callrouter.cluster.settings import ClusterSettings
from callrouter.controller.shared_desk import SharedDesk
from callrouter.store.leases import lease_store
from callrouter.store.testing import fresh_database
from tests.controller.conftest import make_harness


def desk_for(kind, shared, tmp_path):
    h, ctx = make_harness(tmp_path / "h")
    try:
        with fresh_database(kind, tmp_path) as db:
            settings = ClusterSettings(shared_desk=shared)
            cluster = build_cluster(settings, "n1", lease_store(db), Clock(), defer.maybeDeferred, CollectorRegistry())
            made = build_shared_desk(settings, cluster, db, h.desk, h.controller.line, Clock(), defer.maybeDeferred)
            return made, h
    finally:
        h.recorder.stop()
        ctx.__exit__(None, None, None)


def test_a_single_node_keeps_its_own_desk_whatever_the_setting(tmp_path):
    made, h = desk_for("sqlite", True, tmp_path)
    assert made is None and h.controller.line.shared is None and h.desk.shared is None


def test_several_nodes_share_the_desk_only_when_asked(tmp_path):
    made, h = desk_for("postgresql", False, tmp_path / "off")
    assert made is None and h.controller.line.shared is None
    made, h = desk_for("postgresql", True, tmp_path / "on")
    assert isinstance(made, SharedDesk) and h.controller.line.shared is made and h.desk.shared is made
