"""The reaper's follower (callrouter.cluster.reaper) on its own: a sweep at the lead's start and at
each tick, the tasks made put in line and announced, each reaping counted by kind, a sweep the
lead refuses (or a database error) offering nothing and stopping nothing; the store's fake has
the real store's signature."""

import datetime as dt
import inspect
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from twisted.internet import defer

from callrouter.cluster.ports import Fenced
from callrouter.cluster.reaper import Reaper, ReapMetrics
from callrouter.store.reaping import CallReaper

T = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Done:
    kind: str
    task: object = None
    outcome: str | None = None
    call_id: str = "c1"
    practice: str = "cab"


class Events:
    def __init__(self):
        self.tasks, self.ended = [], []

    def task_changed(self, task):
        self.tasks.append(task)

    def call_ended(self, call_id, practice, outcome, cause=None):
        self.ended.append((call_id, practice, outcome, cause))


class Store:
    def __init__(self):
        self.sweeps, self.answers = [], []

    def sweep(self, grace_s, now, limit=100):
        self.sweeps.append((grace_s, now))
        answer = self.answers.pop(0) if self.answers else []
        if isinstance(answer, Exception):
            raise answer
        return answer


def run_now(f, *args):
    return defer.maybeDeferred(f, *args)


def reaper(store):
    registry = CollectorRegistry()
    offered, events = [], Events()
    r = Reaper(store, 12.0, lambda: T, run_now, offered.append, ReapMetrics(registry), events)
    return r, registry, offered, events


def count(registry, kind):
    return registry.get_sample_value("callrouter_calls_reaped_total", {"kind": kind})


def test_taking_the_lead_sweeps_and_each_tick_sweeps_again():
    store = Store()
    r, _, _, _ = reaper(store)
    r.startService()
    assert r.ready.called and store.sweeps == [(12.0, T)]
    r.reconcile()
    assert len(store.sweeps) == 2
    r.stopService()
    r.reconcile()
    assert len(store.sweeps) == 2  # stopped: no sweep


def test_the_tasks_made_are_put_in_line_and_announced_each_call_ended_and_each_reaping_counted():
    store = Store()
    store.answers = [[Done("callback", "task-1", "callback_requested", "c1"), Done("node_lost", None, "failed", "c2"),
                      Done("callback", None, "callback_requested", "c3"), Done("attempt", "task-2")]]
    r, registry, offered, events = reaper(store)
    assert count(registry, "callback") == 0 and count(registry, "node_lost") == 0
    r.startService()
    assert offered == [["task-1", "task-2"]] and events.tasks == ["task-1", "task-2"]
    assert events.ended == [("c1", "cab", "callback_requested", "node_lost"), ("c2", "cab", "failed", "node_lost"),
                            ("c3", "cab", "callback_requested", "node_lost")]
    assert (count(registry, "callback"), count(registry, "node_lost"), count(registry, "attempt")) == (2, 1, 1)


def test_a_refused_or_failed_sweep_offers_nothing_and_the_next_tick_tries_again():
    store = Store()
    store.answers = [Fenced("lead lost"), RuntimeError("database down"), [Done("node_lost")]]
    r, registry, offered, _ = reaper(store)
    r.startService()
    failures = []
    r.ready.addErrback(failures.append)
    assert r.ready.called and failures == []  # the lead's start is not failed by a refused sweep
    r.reconcile()
    assert offered == [] and count(registry, "node_lost") == 0
    r.reconcile()
    assert count(registry, "node_lost") == 1 and len(store.sweeps) == 3


def test_the_fake_store_has_the_real_stores_signature():
    def shape(f):
        return [(p.name, p.default) for p in inspect.signature(f).parameters.values()]

    assert shape(Store.sweep) == shape(CallReaper.sweep)
