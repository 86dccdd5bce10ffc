"""Cheap password hashing for the escalation tests that log users in: they check behaviour, not the
hash's cost."""

import pytest
from argon2 import PasswordHasher

from callrouter.auth import passwords


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
