"""What the Metrics methods count, the escalation engine's steps by channel and outcome (real
engine on the real databases), the pool's call slots and the memory and CPU read from /proc."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
from prometheus_client import generate_latest

from callrouter.domain import ivr
from callrouter.domain.model import OnCallRota
from callrouter.media.pool import WorkerStatus
from callrouter.media.pool_metrics import PoolMetrics
from callrouter.metrics import Metrics
from callrouter.observe.resources import ChildResources, group_members, usage
from tests.escalation.support import FakeChannel, clock_at, dialplan, make_engine


def test_ivr_answers_are_counted_by_menu_and_digit_and_a_retry_is_not():
    m = Metrics()
    m.ivr_outcome("cab", "triage", ivr.Chosen("3"))
    m.ivr_outcome("cab", "triage", ivr.Exhausted("timeout"))
    m.ivr_outcome("cab", "triage", ivr.Prompt(("invalid_choice",), 5.0))
    get = m.registry.get_sample_value
    assert get("callrouter_ivr_choices_total", {"practice": "cab", "menu": "triage", "digit": "3"}) == 1
    assert get("callrouter_ivr_choices_total", {"practice": "cab", "menu": "triage", "digit": "timeout"}) == 1
    assert b"invalid_choice" not in generate_latest(m.registry)


def test_only_a_reload_without_error_moves_the_last_success_timestamp():
    now = [1000.0]
    m = Metrics(clock=lambda: now[0])
    m.dialplan_reloaded(0)
    now[0] = 2000.0
    m.dialplan_reloaded(2)
    get = m.registry.get_sample_value
    assert get("callrouter_dialplan_errors") == 2
    assert get("callrouter_dialplan_last_reload_success_timestamp_seconds") == 1000.0


def test_the_process_collectors_are_exposed():
    text = generate_latest(Metrics().registry).decode()
    assert "process_start_time_seconds" in text and "python_gc_collections_total" in text


def steps(registry, channel: str, outcome: str) -> float:
    return registry.get_sample_value("callrouter_escalation_steps_total", {"channel": channel, "outcome": outcome})


def test_the_engine_counts_each_step_by_channel_and_outcome(db):
    channels = {"sms": FakeChannel(), "email": FakeChannel()}
    channels["email"].fail = True
    plan = dialplan()
    plan = dataclasses.replace(plan, on_call=OnCallRota(weekly=plan.on_call.weekly, backup="dr-nophone"))
    engine, registry = make_engine(db, channels, clock_at(), plan=plan)
    assert steps(registry, "sms", "sent") == 0 and steps(registry, "call", "no_answer") == 0  # from 0
    engine.startService()
    engine.start("call-1", plan, "urgent", "+33612345678")
    # Each of the two rounds, at once (nothing to wait for): the on-call SMS sent, the e-mail failed
    # (the next step is due at once), the backup has no phone.
    assert steps(registry, "sms", "sent") == 2
    assert steps(registry, "email", "failed") == 2
    assert steps(registry, "sms", "skipped") == 2
    assert steps(registry, "email", "sent") == 0
    assert registry.get_sample_value("callrouter_escalation_step_failures_total",
                                     {"practice": "cab", "tier": "urgent", "channel": "email"}) == 2
    engine.stopService()


class Pool:
    def __init__(self, statuses):
        self.statuses = statuses

    def status(self):
        return self.statuses


class Backlog:
    def pending(self) -> int:
        return 3


def test_call_slots_are_the_legs_the_ready_workers_hold_and_can_still_take():
    m = Metrics()
    pool = Pool([WorkerStatus("w0", 5070, "ready", 4, 3, 11), WorkerStatus("w1", 5071, "ready", 4, 0, 12),
                 WorkerStatus("w2", 5072, "starting", 0, 0, 13)])
    PoolMetrics(pool, m, Backlog()).sample()
    get = m.registry.get_sample_value
    assert get("callrouter_media_call_slots", {"state": "used"}) == 3
    assert get("callrouter_media_call_slots", {"state": "free"}) == 5
    assert get("callrouter_media_workers") == 2 and get("callrouter_call_record_backlog") == 3


def test_memory_and_cpu_of_child_processes_are_read_from_proc():
    child = subprocess.Popen([sys.executable, "-c", "import time\nx = bytearray(64 << 20)\n"
                              "t = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
                              "print('ready', flush=True)\ntime.sleep(30)"],
                             stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert child.stdout.readline() == b"ready\n"
        memory, cpu = usage(child.pid)
        assert memory > 60 << 20 and cpu >= 0.25
        assert group_members(child.pid) == [child.pid]
        m = Metrics()
        m.registry.register(ChildResources(lambda: {"w0": [child.pid], "gone": [2 ** 22 + 7]}))
        get = m.registry.get_sample_value
        assert get("callrouter_child_memory_bytes", {"process": "w0"}) == pytest.approx(memory, rel=0.2)
        assert get("callrouter_child_cpu_seconds_total", {"process": "w0"}) >= 0.25
        assert get("callrouter_child_memory_bytes", {"process": "gone"}) is None
    finally:
        child.kill()
        child.wait()
    assert usage(child.pid) is None
    assert os.getpid() in group_members(os.getpgid(0))
