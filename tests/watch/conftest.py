"""Fixtures of the forwarding watch's tests: fresh databases (SQLite and the real PostgreSQL)."""

import pytest

from callrouter.store.testing import KINDS, fresh_database


@pytest.fixture(params=KINDS)
def db(request, tmp_path):
    with fresh_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
def sqlite_db(tmp_path):
    with fresh_database("sqlite", tmp_path) as database:
        yield database
