"""Events of a real call seen by a real MQTT subscriber on the machine's Mosquitto (127.0.0.1:1883):
the secretary's screen-pop with the practice card, the call's states, the retained practice card."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from callrouter.devtools import sipp as scen
from callrouter.devtools.serve import ServeProcess, base_config, free_udp_port
from tests.app.conftest import DIALPLAN, NUMBER
from tests.events.brokers import OwnBroker
from tests.factories import REPO
from tests.media.harness import RtpSink, Sipp

pytestmark = pytest.mark.integration


class Subscriber:
    """mosquitto_sub on one node's topics; a thread collects (topic, payload)."""

    def __init__(self, node: str, port: int = 1883):
        self.proc = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-v", "-q", "1",
                                      "-t", f"callrouter/{node}/#"], stdout=subprocess.PIPE, text=True)
        self.messages: list[tuple[str, dict]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            topic, _, body = line.rstrip("\n").partition(" ")
            try:
                self.messages.append((topic, json.loads(body)))
            except ValueError:
                self.messages.append((topic, {"raw": body}))

    def wait(self, predicate, timeout: float = 20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.messages if predicate(*m)]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"no such message; got topics {[t for t, _ in self.messages]}")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


def test_a_subscriber_gets_the_screen_pop_and_the_call_states(service, tmp_path):
    node = service.config["node"]
    sub = Subscriber(node)
    try:
        sub.wait(lambda t, p: t == f"callrouter/{node}/practices/e2e-test/card")  # retained at start
        bridged_call(service, tmp_path, service.secretary_port, "+33677889900")
        [(_, pop)] = sub.wait(lambda t, p: t.endswith("/screen-pop"))
        assert pop["practice"] == "e2e-test" and pop["caller"]["number"] == "+33677889900"
        assert pop["reason"] == "rendez-vous" and pop["card"]["name"] == "Cabinet Essai"
        call_id = pop["call_id"]
        ended = sub.wait(lambda t, p: t.endswith(f"/calls/{call_id}/state") and p.get("state") == "ended")
        assert ended[0][1]["outcome"] == "answered"
        states = [p["state"] for t, p in sub.messages if t.endswith(f"/calls/{call_id}/state")]
        assert states == ["arrived", "ivr", "queued", "offered", "answered", "ended"]
        assert not any("+33677889900" in t or "33677889900" in json.dumps(p)
                       for t, p in sub.messages if not t.endswith("/screen-pop"))
    finally:
        sub.close()


def bridged_call(svc, tmp_path, secretary_port: int, caller: str) -> None:
    """A patient choosing 3, bridged to the secretary, who hangs up after a second."""
    secretary = Sipp(str(scen.secretary(tmp_path, f"secretary-{caller[-2:]}", "e2e-test", hangup_after_ms=1000)),
                     service=NUMBER, variables={"rtp_port": str(RtpSink().port)}, workdir=tmp_path, timeout_s=60,
                     extra=["-p", str(secretary_port)])
    patient = Sipp(str(scen.caller(tmp_path, f"caller-{caller[-2:]}", [("pause", 1500), ("digit", "3")],
                                   end="wait_bye")),
                   remote_port=svc.worker_ports()[0], service=NUMBER,
                   variables={"rtp_port": str(RtpSink().port), "caller": caller}, workdir=tmp_path, timeout_s=60)
    assert patient.wait(90) == 0, patient.errors()
    assert secretary.wait(90) == 0, secretary.errors()


def test_with_the_broker_down_calls_are_routed_and_events_resume_when_it_is_back(tmp_path, prompts_built):
    (tmp_path / "dialplans").mkdir()
    (tmp_path / "dialplans" / "e2e.yaml").write_text(DIALPLAN.format(number=NUMBER))
    (tmp_path / "mqtt").mkdir()
    broker = OwnBroker(tmp_path / "mqtt")  # its port is free: nothing listens there yet
    secretary_port = free_udp_port()
    config = base_config(tmp_path, tmp_path / "dialplans", REPO / "prompts", workers=2,
                         agents={"*": [f"sip:secretary@127.0.0.1:{secretary_port}"]})
    config["mqtt"] = {"port": broker.port, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0}
    svc = ServeProcess(tmp_path, config).start()
    sub = None
    try:
        bridged_call(svc, tmp_path, secretary_port, "+33677889901")
        [record] = svc.calls(wait_closed=1)
        assert record.outcome == "answered"  # routed and bridged with no broker at all
        broker.start()
        node = config["node"]
        sub = Subscriber(node, broker.port)
        # The retained state comes back: the practice card and the node online.
        sub.wait(lambda t, p: t == f"callrouter/{node}/practices/e2e-test/card")
        sub.wait(lambda t, p: t == f"callrouter/{node}/status" and p.get("status") == "online")
        bridged_call(svc, tmp_path, secretary_port, "+33677889902")
        sub.wait(lambda t, p: t.endswith("/screen-pop") and p["caller"]["number"] == "+33677889902")
    finally:
        if sub is not None:
            sub.close()
        stray = svc.stop()
        broker.stop()
        assert not stray, f"processes left running after stop: {stray}"
