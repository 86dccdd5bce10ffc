"""The store's repositories implement the Protocols the web reaches them through: every method a
port names exists on its implementation with the same parameters (names, kinds, defaults)."""

from __future__ import annotations

import inspect

import pytest

from callrouter.escalation.ack import Acknowledger
from callrouter.store.audit import AuditLog
from callrouter.store.calls import CallRepository
from callrouter.store.escalations import EscalationRepository
from callrouter.store.tasks import TaskRepository
from callrouter.store.users import UserRepository
from callrouter.web import ports

IMPLEMENTATIONS = [
    (ports.UserDirectory, UserRepository), (ports.CallRecords, CallRepository), (ports.AuditTrail, AuditLog),
    (ports.TaskBoard, TaskRepository), (ports.EscalationRecords, EscalationRepository),
    (ports.Acknowledgements, Acknowledger),
]


def port_methods(port: type) -> list[str]:
    return [name for name, value in vars(port).items() if inspect.isfunction(value) and not name.startswith("_")]


def parameters(fn) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize(("port", "implementation"), IMPLEMENTATIONS, ids=lambda c: c.__name__)
def test_the_implementation_has_every_method_of_the_port_with_its_parameters(port, implementation):
    assert port_methods(port)
    for name in port_methods(port):
        ours = parameters(getattr(port, name))
        theirs = [p for p in parameters(getattr(implementation, name)) if p[0] in {o[0] for o in ours}]
        assert ours == theirs, f"{implementation.__name__}.{name}"
