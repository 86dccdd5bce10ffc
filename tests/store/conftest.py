import pytest
from argon2 import PasswordHasher

from callrouter.auth import passwords

from callrouter.store.testing import KINDS, fresh_database


@pytest.fixture(params=KINDS)
def db(request, tmp_path):
    """A fresh database migrated from empty, on SQLite and on the real PostgreSQL."""
    with fresh_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    """Cheap argon2 parameters: the tests check behaviour, not the hash's cost."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                             parallelism=1))
