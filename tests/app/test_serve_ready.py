"""`callrouter serve` says it is running only once a call can be served, and a Ctrl-C stops it
without a traceback, even a second one while it is stopping."""

from __future__ import annotations

import signal
import time

import pytest

from callrouter.devtools.serve import RUNNING, ServeProcess, base_config, edge_config
from tests.app.conftest import DIALPLAN, NUMBER
from tests.factories import REPO
from tests.media.harness import RawSipCaller

pytestmark = pytest.mark.integration


def _service(tmp_path, **sip) -> ServeProcess:
    (tmp_path / "dialplans").mkdir()
    (tmp_path / "dialplans" / "e2e.yaml").write_text(DIALPLAN.format(number=NUMBER))
    return ServeProcess(tmp_path, base_config(tmp_path, tmp_path / "dialplans", REPO / "prompts", workers=2,
                                              sip={**edge_config(tmp_path), **sip}))


def test_a_call_placed_as_soon_as_the_service_says_running_is_answered(tmp_path, prompts_built):
    """With the edge probing workers only every 30 s, the first call still reaches a worker: the
    workers are set active at the edge before "running" is logged, not at the next probe round."""
    svc = _service(tmp_path, worker_probe_interval_s=30).start()
    caller = RawSipCaller(("127.0.0.1", svc.config["sip"]["udp_port"]))
    try:
        caller.invite(NUMBER, "+33699887766", display=b"Patient")
        status, headers = caller.final(timeout=20)
        caller.ack(status, headers)
        assert status == 200, (status, headers, svc.log_tail())
        assert caller.bye() == 200
    finally:
        caller.close()
        assert not svc.stop(), "processes left running"
    log = svc.log_text()
    assert log.index("media worker w1 ready") < log.index(RUNNING) < log.index("incoming call")


def test_ctrl_c_twice_stops_the_service_without_a_traceback(tmp_path, prompts_built):
    svc = _service(tmp_path).start()
    children = list(svc.children().values())
    svc.proc.send_signal(signal.SIGINT)
    time.sleep(0.3)                     # stopping: Kamailio and the workers are being stopped
    svc.proc.send_signal(signal.SIGINT)
    assert svc.proc.wait(timeout=30) == 0
    log = svc.log_text()
    assert "Traceback" not in log and "ReactorNotRunning" not in log, svc.log_tail()
    assert "kamailio stopped" in log
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)]


def _alive(pid: int) -> bool:
    from callrouter.devtools.serve import _alive as alive

    return alive(pid)
