"""The state sampler, on a task.Clock, over the real ACD book and dialplans loaded by the loader:
series seeded at 0 (again after a reload), seconds per secretary state, the oldest call waiting,
open practices with nobody logged in, the rota's end."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from twisted.internet.task import Clock

from callrouter.controller.queues import QueueBook
from callrouter.escalation.metrics import EscalationMetrics
from callrouter.metrics import Metrics
from callrouter.observe.samplers import StateSampler
from tests.factories import dialplan_text, load_one

MONDAY_10H = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.timezone.utc)  # 10:00 in Paris: open
ROTA = """\
on_call:
  until: 2026-06-10
  weekly:
    - {days: mon-sun, hours: "08:00-20:00", who: dr-a}
"""


@dataclass(eq=False)
class Task:
    """A callback task waiting in line keeps the place of its call, often long before."""

    task_id: str


@pytest.fixture
def world(tmp_path):
    clock = Clock()
    clock.advance(MONDAY_10H.timestamp())
    metrics = Metrics()
    escalations = EscalationMetrics(metrics.registry)
    book = QueueBook({"cab/*": ["sip:desk@10.0.0.1", "alice"], "other/*": ["bob"]}, secretary_domain="edge",
                     login_required=True)
    dialplans = {"cab": load_one(tmp_path, dialplan_text(practice="cab", extra=ROTA), name="cab.yaml")}
    in_force = [dialplans]  # a reload puts a new mapping here, as the registry hands a new one
    sampler = StateSampler(metrics, lambda: in_force[-1], book, clock)
    return clock, metrics, escalations, book, in_force, sampler


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_series_start_at_0_for_every_label_the_dialplans_know(world):
    clock, metrics, escalations, book, in_force, sampler = world
    sampler.startService()
    assert value(metrics, "callrouter_calls_total", practice="cab", outcome="abandoned") == 0
    assert value(metrics, "callrouter_ivr_choices_total", practice="cab", menu="triage", digit="3") == 0
    assert value(metrics, "callrouter_ivr_choices_total", practice="cab", menu="triage", digit="timeout") == 0
    assert value(metrics, "callrouter_overflows_total", practice="cab", cause="nobody") == 0
    assert value(metrics, "callrouter_queue_wait_seconds_count", practice="cab", queue="general") == 0
    assert value(metrics, "callrouter_calls_for_secretary_total", practice="cab") == 0
    assert value(metrics, "callrouter_service_level_target_ratio", practice="cab") == 0.8
    assert value(metrics, "callrouter_escalations_started_total", practice="cab", tier="vital") == 0
    assert value(metrics, "callrouter_escalation_step_failures_total", practice="cab", tier="vital", channel="sms") == 0
    assert value(metrics, "callrouter_escalation_steps_total", channel="call", outcome="no_answer") == 0
    sampler.stopService()


def test_a_reload_seeds_the_new_practices_and_drops_the_gauges_of_those_gone(world, tmp_path):
    clock, metrics, escalations, book, in_force, sampler = world
    sampler.startService()
    assert value(metrics, "callrouter_practice_open", practice="cab") == 1
    in_force.append({"other": load_one(tmp_path, dialplan_text(practice="other", number="+33100000002"),
                                       name="o.yaml")})
    clock.advance(1)
    assert value(metrics, "callrouter_calls_total", practice="other", outcome="answered") == 0
    assert value(metrics, "callrouter_practice_open", practice="cab") is None
    assert value(metrics, "callrouter_queue_oldest_wait_seconds", practice="cab", queue="general") is None
    assert value(metrics, "callrouter_calls_total", practice="cab", outcome="answered") == 0  # history stays
    sampler.stopService()


def test_seconds_in_each_state_are_summed_over_the_secretaries(world):
    clock, metrics, escalations, book, in_force, sampler = world
    sampler.startService()
    clock.advance(3)  # the desk phone is available; alice and bob are offline
    book.find("sip:desk@10.0.0.1").activity = "on_call"
    clock.advance(2)
    assert value(metrics, "callrouter_secretary_state_seconds_total", state="available") == 3
    assert value(metrics, "callrouter_secretary_state_seconds_total", state="on_call") == 2
    assert value(metrics, "callrouter_secretary_state_seconds_total", state="offline") == 10
    assert value(metrics, "callrouter_secretary_state_seconds_total", state="paused") == 0
    sampler.stopService()


def test_the_oldest_call_waiting_per_queue_leaves_callback_tasks_out(world):
    clock, metrics, escalations, book, in_force, sampler = world
    sampler.startService()
    book.enqueue(Task("t1"), "cab", "general", 0, clock.seconds() - 3600)
    clock.advance(1)
    assert value(metrics, "callrouter_queue_oldest_wait_seconds", practice="cab", queue="general") == 0
    book.enqueue(object(), "cab", "general", 0, clock.seconds())
    clock.advance(2)
    book.enqueue(object(), "cab", "general", 0, clock.seconds())
    clock.advance(5)
    assert value(metrics, "callrouter_queue_oldest_wait_seconds", practice="cab", queue="general") == 7
    sampler.stopService()


def test_an_open_practice_is_unstaffed_until_one_of_its_secretaries_logs_in(tmp_path):
    clock = Clock()
    clock.advance(MONDAY_10H.timestamp())
    metrics = Metrics()
    book = QueueBook({"cab/*": ["alice"]}, secretary_domain="edge", login_required=True)
    dialplans = {"cab": load_one(tmp_path, dialplan_text(practice="cab"))}
    sampler = StateSampler(metrics, lambda: dialplans, book, clock)
    sampler.startService()
    assert value(metrics, "callrouter_practice_open_unstaffed", practice="cab") == 1
    alice = book.find("alice")
    alice.logged_in = True
    book.set_registered(frozenset({"alice"}))
    clock.advance(1)
    assert value(metrics, "callrouter_practice_open_unstaffed", practice="cab") == 0
    clock.advance(12 * 3600)  # 22:00: closed
    assert value(metrics, "callrouter_practice_open", practice="cab") == 0
    assert value(metrics, "callrouter_practice_open_unstaffed", practice="cab") == 0
    sampler.stopService()


def test_the_rota_end_is_read_at_start(world):
    clock, metrics, escalations, book, in_force, sampler = world
    sampler.startService()
    end = dt.datetime(2026, 6, 10, 18, 0, tzinfo=dt.timezone.utc)
    assert value(metrics, "callrouter_oncall_rota_end_timestamp_seconds", practice="cab") == end.timestamp()
    sampler.stopService()
