"""SIGHUP to `callrouter controller` run apart from `callrouter media` and `callrouter edge` (as
systemd runs them): its live settings apply, each change another unit holds is named with that
unit, and the media and edge processes are left alone (same pids, workers kept)."""

from __future__ import annotations

import json
import signal

import pytest

from tests.app.test_serve_restart import SplitService, start_split

pytestmark = pytest.mark.integration


def test_sighup_to_the_controller_alone_names_the_units_to_restart(tmp_path, prompts_built):
    acd = start_split(tmp_path)
    svc: SplitService = acd.svc  # type: ignore[assignment]
    try:
        pids = {name: proc.pid for name, proc in svc.parts.items()}
        workers = svc.workers()
        config = json.loads(json.dumps(svc.config))
        config["controller"]["ring_timeout_s"] = 11.0
        config["sip"]["flood_max_requests"] = 40
        config["media"]["rtp_port_base"] = config["media"]["rtp_port_base"] + 2
        config["mqtt"] = {"keepalive_s": 20}
        (svc.root / "callrouter.yaml").write_text(json.dumps(config))
        svc.proc.send_signal(signal.SIGHUP)
        applied = svc.wait_log("settings applied:")
        assert "controller.ring_timeout_s 3.0 -> 11.0" in applied, applied
        assert "needs a restart of callrouter-edge" in svc.wait_log("sip.flood_max_requests")
        assert "needs a restart of callrouter-media" in svc.wait_log("media.rtp_port_base needs")
        assert "media.rtp_port_base, mqtt.keepalive_s need a restart of callrouter;" in svc.log_text()
        svc.wait_metric("callrouter_settings_restart_pending", lambda v: v == 3)
        assert {name: proc.pid for name, proc in svc.parts.items()} == pids
        assert all(proc.poll() is None for proc in (svc.proc, *svc.parts.values()))
        assert svc.workers() == workers
    finally:
        acd.kill_started()
        stray = svc.stop()
        assert not stray, f"processes left running after stop: {stray}"
