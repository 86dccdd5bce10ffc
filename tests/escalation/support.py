"""Shared pieces of the escalation tests: a dialplan, a fake channel, an engine on a real database."""

import dataclasses
import datetime as dt
import inspect

from prometheus_client import CollectorRegistry
from twisted.internet import defer, task

from callrouter.domain.model import EscalationStep, EscalationTier
from callrouter.escalation.channels import ChannelError
from callrouter.escalation.engine import EscalationEngine
from callrouter.escalation.metrics import EscalationMetrics
from callrouter.escalation.settings import EscalationSettings
from callrouter.store.escalations import EscalationRepository
from tests.domain.test_escalation import T0, dialplan as base_dialplan

SECRET = "test-secret"
URGENT = EscalationTier("urgent", (
    EscalationStep("sms", "on_call", wait_s=0),
    EscalationStep("email", "on_call", wait_s=180),
    EscalationStep("sms", "backup", wait_s=180),
), repeat=1)
SETTINGS = EscalationSettings(enabled=True, ack_secret=SECRET, public_url="https://cr.example.org")


def dialplan(**overrides):
    return base_dialplan(**{"escalation": {"urgent": URGENT}, **overrides})


def sync(f, *a):
    return defer.maybeDeferred(f, *a)


class FakeChannel:
    """Implements callrouter.escalation.channels.Channel; records messages, fails on demand."""

    def __init__(self):
        self.sent = []
        self.fail = False

    def send(self, message):
        if self.fail:
            return defer.fail(ChannelError("gateway down"))
        self.sent.append(message)
        return defer.succeed(f"id-{len(self.sent)}")


def same_signature(fake, real) -> bool:
    """`fake` an instance, `real` a class: same parameters for send() (self aside)."""
    return list(inspect.signature(fake.send).parameters) == list(inspect.signature(real.send).parameters)[1:]


def clock_at(when: dt.datetime = T0) -> task.Clock:
    clock = task.Clock()
    clock.advance(when.timestamp())
    return clock


def make_engine(db, channels, clock, plan=None, registry=None, settings=SETTINGS, run=sync):
    plan = plan or dialplan()
    registry = registry or CollectorRegistry()
    engine = EscalationEngine(EscalationRepository(db), channels, lambda practice: plan, settings, clock,
                              EscalationMetrics(registry), run_blocking=run)
    return engine, registry


def replace(settings, **kw):
    return dataclasses.replace(settings, **kw)
