"""A patient's call through the whole chain a practice forwards to: Kamailio edge, dispatcher,
pjsua2 worker, controller, secretary."""

from __future__ import annotations

import pytest

from callrouter.devtools import sipp as scen
from callrouter.devtools.serve import ServeProcess, base_config, edge_config, free_udp_port
from tests.app.conftest import DIALPLAN, NUMBER
from tests.factories import REPO
from tests.media.harness import RtpSink, Sipp

pytestmark = pytest.mark.integration


@pytest.fixture
def edge_service(tmp_path, prompts_built):
    (tmp_path / "dialplans").mkdir()
    (tmp_path / "dialplans" / "e2e.yaml").write_text(DIALPLAN.format(number=NUMBER))
    secretary_port = free_udp_port()
    config = base_config(tmp_path, tmp_path / "dialplans", REPO / "prompts", workers=2,
                         agents={"*": [f"sip:secretary@127.0.0.1:{secretary_port}"]}, sip=edge_config(tmp_path))
    svc = ServeProcess(tmp_path, config).start()
    svc.secretary_port = secretary_port
    try:
        svc.wait_edge_ready(2)
        yield svc
    finally:
        stray = svc.stop()
        assert not stray, f"processes left running after stop (Kamailio included): {stray}"


def test_forwarded_call_through_kamailio_reaches_a_secretary(edge_service, tmp_path):
    svc = edge_service
    assert "kamailio" in svc.children()
    sink = RtpSink()
    secretary_sink = RtpSink()
    secretary = Sipp(str(scen.secretary(tmp_path, "secretary", "e2e-test", hangup_after_ms=1500)), service=NUMBER,
                     variables={"rtp_port": str(secretary_sink.port)}, workdir=tmp_path, timeout_s=60,
                     extra=["-p", str(svc.secretary_port)])
    caller = Sipp(str(scen.caller(tmp_path, "edge_caller", [("pause", 2000), ("digit", "3")], end="wait_bye")),
                  remote_port=svc.config["sip"]["udp_port"], service=NUMBER,
                  variables={"rtp_port": str(sink.port), "caller": "+33699887766"}, workdir=tmp_path, timeout_s=60)
    assert caller.wait(90) == 0, caller.errors()
    assert secretary.wait(90) == 0, secretary.errors()
    assert sink.audible() > 20
    [record] = svc.calls(wait_closed=1)
    assert record.outcome == "answered" and record.worker in ("w0", "w1")
    assert [(a.menu, a.digit) for a in record.ivr_answers] == [("triage", "3")]


def test_a_call_goes_to_the_secretary_registered_at_the_edge_and_only_while_registered(tmp_path, prompts_built):
    import subprocess

    from callrouter.devtools.serve import CLI
    from tests.sip.sipclient import SipClient

    (tmp_path / "dialplans").mkdir()
    (tmp_path / "dialplans" / "e2e.yaml").write_text(DIALPLAN.format(number=NUMBER))
    config = base_config(tmp_path, tmp_path / "dialplans", REPO / "prompts", workers=2,
                         agents={"*": ["alice"]}, sip=edge_config(tmp_path))
    svc = ServeProcess(tmp_path, config).start()
    try:
        svc.wait_edge_ready(2)
        for args in (["users", "add", "alice", "--role", "secretary", "--practice", "e2e-test"],
                     ["users", "sip-password", "alice"]):
            done = subprocess.run([CLI, *args, "--password-stdin"], cwd=tmp_path, input="un mot de passe solide\n",
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
        edge = ("127.0.0.1", svc.config["sip"]["udp_port"])

        # Nobody registered: the patient's call overflows to voicemail at once.
        caller = Sipp(str(scen.caller(tmp_path, "nobody", [("pause", 1500), ("digit", "3"), ("pause", 3000)])),
                      remote_port=edge[1], service=NUMBER, variables={"rtp_port": str(RtpSink().port), "caller": "+33611111111"},
                      workdir=tmp_path, timeout_s=60)
        assert caller.wait(90) == 0, caller.errors()
        [first] = svc.calls(wait_closed=1)
        assert first.queued_at is None and first.route == "overflow"

        phone_port = free_udp_port()
        phone = SipClient(edge, bind_port=phone_port)
        assert phone.register("alice", "un mot de passe solide", expires=600).status == 200
        phone.close()  # the softphone's port is now the SIPp secretary's
        svc.wait_metric("callrouter_secretaries_registered", lambda v: v == 1)
        secretary = Sipp(str(scen.secretary(tmp_path, "alice", "e2e-test", hangup_after_ms=1000)), service=NUMBER,
                         variables={"rtp_port": str(RtpSink().port)}, workdir=tmp_path, timeout_s=60,
                         extra=["-p", str(phone_port)])
        caller = Sipp(str(scen.caller(tmp_path, "to_alice", [("pause", 1500), ("digit", "3")], end="wait_bye")),
                      remote_port=edge[1], service=NUMBER, variables={"rtp_port": str(RtpSink().port), "caller": "+33622222222"},
                      workdir=tmp_path, timeout_s=60)
        assert caller.wait(90) == 0, caller.errors()
        assert secretary.wait(90) == 0, secretary.errors()
        records = svc.calls(wait_closed=2)
        assert records[0].outcome == "answered" and records[0].secretary == f"sip:alice@127.0.0.1:{edge[1]}"
    finally:
        stray = svc.stop()
        assert not stray


def test_ctrl_c_stops_everything_even_when_sigint_was_ignored_by_the_launcher(tmp_path, prompts_built):
    """A shell running `make run &` leaves SIGINT ignored in its children; Ctrl-C must still work."""
    import signal
    import subprocess

    (tmp_path / "dialplans").mkdir()
    (tmp_path / "dialplans" / "e2e.yaml").write_text(DIALPLAN.format(number=NUMBER))
    config = base_config(tmp_path, tmp_path / "dialplans", REPO / "prompts", workers=1, sip=edge_config(tmp_path))
    original = subprocess.Popen.__init__

    def ignoring_sigint(self, *args, **kwargs):
        kwargs["preexec_fn"] = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)
        original(self, *args, **kwargs)

    svc = ServeProcess(tmp_path, config)
    subprocess.Popen.__init__ = ignoring_sigint
    try:
        svc.start()
    finally:
        subprocess.Popen.__init__ = original
    try:
        svc.wait_edge_ready(1)
        assert set(svc.children()) == {"w0", "kamailio"}
        assert svc.stop(sig=signal.SIGINT) == []
        assert svc.proc.returncode == 0
    finally:
        svc.stop()
