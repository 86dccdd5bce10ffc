"""tests/conftest.py's rule, run on tiny test files in a pytest of their own: a skip is a skip
until the environment variable CI is set; then it is a failure giving the skip's reason."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.factories import REPO

RUN_TIME_SKIPS = '''\
import pytest

@pytest.mark.skipif(True, reason="partie A absente")
def test_skipif():
    pass

def test_skip_in_body():
    pytest.skip("partie B absente")

@pytest.fixture
def part():
    pytest.skip("partie C absente")

def test_skip_in_fixture(part):
    pass

def test_importorskip_in_body():
    pytest.importorskip("callrouter_no_such_module")

@pytest.mark.xfail(reason="known defect", strict=True)
def test_expected_failure():
    assert False

def test_passes():
    pass
'''

COLLECTION_SKIP = '''\
import pytest

pytest.importorskip("callrouter_no_such_module")

def test_never_collected():
    pass
'''


def run_pytest(tmp_path: Path, source: str, ci: str | None) -> tuple[int, dict[str, tuple[str, str]], str]:
    """pytest on one test file with this repository's tests/conftest.py as its only conftest;
    returns its exit code, test name -> (outcome, message) from its JUnit report, and its output."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_tiny.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    junit = tmp_path / "report.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
                           "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "-rA",
                           f"--junit-xml={junit}", str(tmp_path / "test_tiny.py")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    outcomes = {}
    for case in ET.parse(junit).iter("testcase"):
        found = [child for child in case if child.tag in ("skipped", "failure", "error")]
        outcome = found[0].tag if found else "passed"
        outcomes[case.get("name")] = (outcome, found[0].get("message", "") if found else "")
    return proc.returncode, outcomes, proc.stdout + proc.stderr


@pytest.mark.parametrize("ci", [None, ""])
def test_without_ci_a_skip_is_a_skip(tmp_path, ci):
    code, outcomes, output = run_pytest(tmp_path, RUN_TIME_SKIPS, ci)
    assert code == pytest.ExitCode.OK, output
    assert {name: outcome for name, (outcome, _) in outcomes.items()} == {
        "test_skipif": "skipped", "test_skip_in_body": "skipped", "test_skip_in_fixture": "skipped",
        "test_importorskip_in_body": "skipped", "test_expected_failure": "skipped",  # JUnit's word for xfail
        "test_passes": "passed"}, output
    assert "CI is set" not in output


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_every_skip_fails_with_its_reason(tmp_path, ci):
    code, outcomes, output = run_pytest(tmp_path, RUN_TIME_SKIPS, ci)
    assert code == pytest.ExitCode.TESTS_FAILED, output
    assert "CI is set: skipped tests are reported as failures" in output
    reasons = {"test_skipif": "partie A absente", "test_skip_in_body": "partie B absente",
               "test_skip_in_fixture": "partie C absente",
               "test_importorskip_in_body": "could not import 'callrouter_no_such_module'"}
    for name, reason in reasons.items():
        outcome, _ = outcomes[name]
        assert outcome in ("failure", "error"), (name, output)  # error: skipped while setting up
        assert f"skipped under CI: {reason}" in output, (name, output)
    assert outcomes["test_expected_failure"][0] == "skipped"  # an xfail is not a skip of a missing part
    assert outcomes["test_passes"] == ("passed", "")


def test_a_module_skipped_while_collected_fails_under_ci_only(tmp_path):
    code, outcomes, output = run_pytest(tmp_path, COLLECTION_SKIP, None)
    assert code == pytest.ExitCode.NO_TESTS_COLLECTED and "1 skipped" in output, output
    code, outcomes, output = run_pytest(tmp_path, COLLECTION_SKIP, "true")
    assert code == pytest.ExitCode.INTERRUPTED, output  # an error while collecting stops the run
    assert "skipped under CI: could not import 'callrouter_no_such_module'" in output, output
    assert [outcome for outcome, _ in outcomes.values()] == ["error"], output


NEEDS = '''\
import pytest

from tests.needs import missing

@pytest.mark.needs(True, reason="partie D absente")
def test_marked_missing():
    pass

@pytest.mark.needs(False, reason="partie F absente")
def test_marked_present():
    pass

def test_missing_in_body():
    missing("partie E absente")
'''


@pytest.mark.parametrize("ci", [None, "true"])
def test_a_part_said_missing_skips_without_ci_and_fails_under_it(tmp_path, ci):
    """The explicit guard (tests/needs.py): `missing()` and the `needs` marker fail by themselves
    under CI, before the report hook."""
    code, outcomes, output = run_pytest(tmp_path, NEEDS, ci)
    assert outcomes["test_marked_present"] == ("passed", ""), output
    for name in ("test_marked_missing", "test_missing_in_body"):
        outcome, _ = outcomes[name]
        assert outcome == ("skipped" if ci is None else "failure") or (ci and outcome == "error"), (name, output)
    if ci is None:
        assert code == pytest.ExitCode.OK, output
    else:
        assert code == pytest.ExitCode.TESTS_FAILED, output
        assert "partie D absente; CI must have every part" in output, output
        assert "partie E absente; CI must have every part" in output, output
