"""Events of a real call seen by a real MQTT subscriber on the machine's Mosquitto (127.0.0.1:1883):
the secretary's screen-pop with the practice card, the call's states, the retained practice card."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from callrouter.devtools import sipp as scen
from tests.app.conftest import NUMBER
from tests.media.harness import RtpSink, Sipp

pytestmark = pytest.mark.integration


class Subscriber:
    """mosquitto_sub on one node's topics; a thread collects (topic, payload)."""

    def __init__(self, node: str):
        self.proc = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", "1883", "-v", "-q", "1",
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
        secretary = Sipp(str(scen.secretary(tmp_path, "secretary", "e2e-test", hangup_after_ms=1000)), service=NUMBER,
                         variables={"rtp_port": str(RtpSink().port)}, workdir=tmp_path, timeout_s=60,
                         extra=["-p", str(service.secretary_port)])
        caller = Sipp(str(scen.caller(tmp_path, "caller", [("pause", 1500), ("digit", "3")], end="wait_bye")),
                      remote_port=service.worker_ports()[0], service=NUMBER,
                      variables={"rtp_port": str(RtpSink().port), "caller": "+33677889900"}, workdir=tmp_path,
                      timeout_s=60)
        assert caller.wait(90) == 0 and secretary.wait(90) == 0
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
