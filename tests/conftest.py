"""Under CI, a skipped test is a failed test.

Tests skip when a real part they need is missing from the machine (SIPp, baresip, espeak-ng,
sox...). On a developer's machine that is a fair skip; on CI, which installs every part, it would
hide the very test that proves the production path. So when the environment variable `CI` is set
(to anything but the empty string), every skip (`pytest.skip`, `skipif`, `importorskip`, at
collection or while running) is reported as a failure that gives the skip's reason. Expected
failures (`xfail`) are not skips and are left alone.
"""

from __future__ import annotations

import os

import pytest

from argon2 import PasswordHasher

from callrouter.auth import passwords
from callrouter.store.testing import KINDS, fresh_database
from tests.needs import missing

CI_VARIABLE = "CI"


def under_ci() -> bool:
    return bool(os.environ.get(CI_VARIABLE))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """`@pytest.mark.needs(part_is_missing, reason=...)`: fails under CI, skips elsewhere."""
    for marker in item.iter_markers("needs"):
        if marker.args and marker.args[0]:
            missing(marker.kwargs.get("reason", "a real part is missing"))


def skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    """The reason a skip report gives (its longrepr is (path, line, "Skipped: reason"))."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        path, line, reason = longrepr
        reason = reason.removeprefix("Skipped: ")
        return f"{reason} ({path}:{line})"
    return str(longrepr)


def failure_message(reason: str) -> str:
    return (f"skipped under {CI_VARIABLE}: {reason}. {CI_VARIABLE} must have every part the tests use "
            f"(scripts/ensure-system-deps); unset {CI_VARIABLE} to let the test skip locally")


def fail_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    report.longrepr = failure_message(skip_reason(report))
    report.outcome = "failed"


def pytest_report_header(config: pytest.Config) -> str | None:
    return f"{CI_VARIABLE} is set: skipped tests are reported as failures" if under_ci() else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if under_ci() and report.skipped and not hasattr(report, "wasxfail"):
        fail_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """A module skipped while collected (module-level `pytest.importorskip` or
    `pytest.skip(allow_module_level=True)`) never reaches pytest_runtest_makereport."""
    report = yield
    if under_ci() and report.skipped:
        fail_skip(report)
    return report


# --- databases shared by the store-backed tests ---------------------------------------------------

@pytest.fixture(params=KINDS)
def db(request, tmp_path):
    """A fresh database migrated from empty, on SQLite and on the real PostgreSQL (127.0.0.1:5432,
    db `test`): a test taking `db` runs once on each."""
    with fresh_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
def sqlite_db(tmp_path):
    """A fresh SQLite database migrated from empty."""
    with fresh_database("sqlite", tmp_path) as database:
        yield database


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    """Cheap argon2 parameters in every test: they check behaviour, not the hash's cost (the
    service under test in a subprocess keeps its own)."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
