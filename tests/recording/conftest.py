import pytest

from callrouter.store.testing import KINDS, fresh_database


@pytest.fixture(params=KINDS)
def db(request, tmp_path):
    """A fresh database migrated from empty, on SQLite and on the real PostgreSQL."""
    with fresh_database(request.param, tmp_path) as database:
        yield database
