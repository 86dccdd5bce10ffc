import pytest

from tests.media.harness import Sipp, WorkerProc


@pytest.fixture(autouse=True)
def no_leftover_processes():
    """Whatever a test started (SIPp runs, workers) is gone after it, even when it failed."""
    yield
    while Sipp.started:
        Sipp.started.pop().kill()
    while WorkerProc.started:
        WorkerProc.started.pop().stop()
