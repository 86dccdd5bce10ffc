"""The escalation's SMS gateway moved while `callrouter serve` runs: the settings file edited to a
new loopback HTTP gateway, then SIGHUP; the next escalation's SMS reaches the new gateway and none
the old, the change is applied live (no restart named), and the gateway's Authorization header
is never in the log. The whole service behind the real Kamailio edge."""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass

import pytest

from tests.app.acd_support import Practice, running_acd
from tests.app.test_serve_console import ON_CALL, SmsGateway

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class GardePractice(Practice):
    def dialplan(self) -> str:
        return super().dialplan() + "practitioners:\n" + ON_CALL


PRACTICE = GardePractice("reload-sms", "+33100000341", ("rhea",))


def gateway() -> SmsGateway:
    import threading

    server = SmsGateway()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_the_sms_gateway_moved_by_sighup_takes_the_next_escalation(tmp_path, prompts_built):
    old, new = gateway(), gateway()
    try:
        escalation = {"enabled": True, "ack_secret": "test-secret", "sms_url": old.url,
                      "sms_auth_header": "Bearer ancien-jeton"}
        with running_acd(tmp_path, [PRACTICE], escalation=escalation, workers=1) as acd:
            token = acd.sign_in("rhea")
            body = {"practice": PRACTICE.name, "tier": "urgent", "callback_number": "+33612345678"}
            status, answer = acd.api("POST", "/api/escalations", token, body)
            assert status == 201, answer
            assert wait_for(lambda: len(old.received) == 1), acd.svc.log_tail()

            config = json.loads(json.dumps(acd.svc.config))
            config["escalation"].update({"sms_url": new.url, "sms_auth_header": "Bearer nouveau-jeton"})
            (acd.svc.root / "callrouter.yaml").write_text(json.dumps(config))
            acd.svc.proc.send_signal(signal.SIGHUP)
            applied = acd.svc.wait_log("settings applied:")
            assert f"escalation.sms_url '{old.url}' -> '{new.url}'" in applied
            assert "escalation.sms_auth_header '***' -> '***'" in applied

            status, answer = acd.api("POST", "/api/escalations", token, {**body, "callback_number": "+33612345679"})
            assert status == 201, answer
            assert wait_for(lambda: len(new.received) == 1), acd.svc.log_tail()
            assert len(old.received) == 1  # none more to the old gateway
            log = acd.svc.log_text()
            assert "jeton" not in log and "needs a restart" not in log.split("settings applied:")[-1]
    finally:
        old.shutdown()
        new.shutdown()
