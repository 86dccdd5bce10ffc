"""The forwarding watch on the whole service: `callrouter serve` with its Kamailio edge and pjsua2
workers, a SIPp "operator" behind the outbound trunk, a real local SMTP server and a real local
HTTP SMS gateway. One service for the module; each test has a practice (and a number) of its own.

- The operator forwards the watch call back to the edge, as a forwarded line does (from the trusted
  trunk address, to the practice's number, with the caller's number): the watch passes with its
  round-trip time, and the call coming back is released at once (603 before any answer): no call
  record, no call counted, nothing queued, no secretary rung.
- The operator does not forward (the practice answers, the line is busy, or nothing comes back):
  the watch fails after one retry, the gauge the alert rule reads is 1, and each contact of the
  practice and of the secretariat gets one e-mail (SMTP) and one SMS (HTTP gateway), once. A real
  Prometheus scraping the service every second with the quick copy of the rules
  (callrouter.observe.rules.QUICK) fires CallrouterForwardingBroken for that practice only.

A supervisor starts each test with "tester le renvoi" (POST /api/practices/{practice}/watch/run);
the schedule itself is tested on a Clock (tests/watch/test_service.py, test_schedule.py).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from argon2 import PasswordHasher

from callrouter.auth import passwords
from callrouter.auth.sealing import KeyFileBox
from callrouter.auth.totp import code_at
from callrouter.devtools.serve import ServeProcess, base_config, edge_config, free_tcp_port, free_udp_port
from callrouter.observe import local, rules
from callrouter.store.audit import Actor
from callrouter.store.db import Database
from callrouter.store.users import UserRepository
from tests.factories import REPO
from tests.needs import missing
from tests.sip.harness import Sipp, wait_for
from tests.watch import operator

pytestmark = pytest.mark.integration

PASSWORD = "Veille-des-renvois-42!"
FIRST = "+33180000100"  # the secretariat's watch range: +33180000100 to +33180000103
SECRETARIAT_EMAIL, SECRETARIAT_SMS = "supervision@telesecretariat.example", "+33611111111"
PRACTICES = {"watch-pass": "+33100000301", "watch-answer": "+33100000302", "watch-busy": "+33100000303",
             "watch-silent": "+33100000304"}
TIMEOUT_S, RETRY_S = 5, 5
DIALPLAN = """\
practice: {practice}
name: Cabinet {practice}
timezone: Europe/Paris
numbers: ["{number}"]
hours:
  daily: ["00:00-24:00"]
queues:
  general: {{label: Secrétariat, wrap_up: 1s, announce_interval: 300s}}
routes:
  open: {{queue: general}}
  closed: {{queue: general}}
  holiday: {{queue: general}}
watch:
  forwarding: always
  at: ["03:10"]
  timeout: {timeout}s
  retry_after: {retry}s
  contacts: {{email: "{practice}@example.fr", sms: "{sms}"}}
"""


def practice_sms(practice: str) -> str:
    return "+336" + PRACTICES[practice][-8:]


class Mailbox:
    def __init__(self):
        self.mails: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        self.mails.append((list(envelope.rcpt_tos),
                           email.message_from_bytes(envelope.content, policy=email.policy.default)))
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for rcpt, m in self.mails if address in rcpt]


class Gateway(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Gateway.received.append({"to": body["to"], "text": body["text"], "key": self.headers["Idempotency-Key"]})
        answer = json.dumps({"id": f"gw-{len(Gateway.received)}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def to(number: str) -> list[dict]:
    return [m for m in Gateway.received if m["to"] == number]


class Prometheus:
    """Debian's prometheus on loopback scraping the service every second, with the quick rules."""

    def __init__(self, root, target: str):
        binary = local.binary()
        if binary is None:
            missing("prometheus is missing: Debian package prometheus (scripts/ensure-system-deps)")
        root.mkdir()
        quick = root / "rules.yml"
        quick.write_text(rules.render(rules.QUICK))
        config = local.write_config(root / "prometheus.yml", [target], [quick], scrape_interval="1s")
        self.address = f"127.0.0.1:{free_tcp_port()}"
        self.log = root / "prometheus.log"
        self.proc = subprocess.Popen(local.command(binary, config, root / "data", self.address),
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)

    def firing(self, alert: str) -> list[str]:
        """The practices `alert` fires for (none while Prometheus is not up yet)."""
        try:
            with urllib.request.urlopen(f"http://{self.address}/api/v1/alerts", timeout=5) as reply:
                found = json.loads(reply.read())["data"]["alerts"]
        except OSError:
            return []
        return sorted(a["labels"].get("practice", "") for a in found
                      if a["labels"]["alertname"] == alert and a["state"] == "firing")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)


class Watching:
    """The running service, its trunk port, its mail and SMS servers, a supervisor's token, and a
    Prometheus scraping it."""

    def __init__(self, root, svc, trunk_port, mailbox, token, nobody, prometheus):
        self.root, self.svc, self.trunk_port, self.mailbox, self.token, self.nobody = (
            root, svc, trunk_port, mailbox, token, nobody)
        self.prometheus = prometheus
        self.started: list[Sipp] = []

    @property
    def edge_port(self) -> int:
        return self.svc.config["sip"]["udp_port"]

    def api(self, method, path, body=None):
        request = urllib.request.Request(f"http://127.0.0.1:{self.svc.config['http']['port']}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode())
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def operator(self, scenario, calls: int = 1, port: int | None = None, remote=None, extra=()) -> Sipp:
        run = Sipp(self.root / "operator", str(scenario), port=port or self.trunk_port, remote=remote, calls=calls,
                   timeout_s=60, extra=list(extra), name=scenario.stem)
        self.started.append(run)
        return run

    def test_now(self, practice: str) -> dict:
        status, body = self.api("POST", f"/api/practices/{practice}/watch/run", {})
        assert status == 202, body
        return body

    def verdict(self, practice: str, run_id: int, timeout: float = 40) -> dict:
        def done():
            runs = self.api("GET", f"/api/practices/{practice}/watch")[1]["runs"]
            run = next((r for r in runs if r["id"] == run_id), None)
            return run if run and run["state"] != "calling" else None

        run = wait_for(done, timeout=timeout, interval=0.2)
        assert run is not None, f"no verdict; log:\n{self.svc.log_tail()}"
        return run

    def kill_started(self):
        while self.started:
            self.started.pop().kill()


def add_supervisor(svc: ServeProcess) -> str:
    """A supervisor, her TOTP secret sealed with the running service's key file (as it reads them)."""
    db = Database.from_url(svc.db_url)
    hasher = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        box = KeyFileBox(svc.root / "var" / "secrets.key")
        return UserRepository(db, totp_box=box).add(Actor("test", "127.0.0.1"), "sophie", "Sophie", "supervisor", PASSWORD,
                                      dt.datetime.now(dt.timezone.utc)).totp_secret
    finally:
        passwords._hasher = hasher
        db.dispose()


def sign_in(svc: ServeProcess, secret: str) -> str:
    code = code_at(secret, dt.datetime.now(dt.timezone.utc))
    request = urllib.request.Request(f"http://127.0.0.1:{svc.config['http']['port']}/api/login", method="POST",
                                     data=json.dumps({"username": "sophie", "password": PASSWORD,
                                                      "totp": code}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["token"]


@pytest.fixture(scope="module")
def watching(tmp_path_factory, prompts_built):
    root = tmp_path_factory.mktemp("watch")
    (root / "operator").mkdir()
    dialplans = root / "dialplans"
    dialplans.mkdir()
    for practice, number in PRACTICES.items():
        (dialplans / f"{practice}.yaml").write_text(DIALPLAN.format(
            practice=practice, number=number, sms=practice_sms(practice), timeout=TIMEOUT_S, retry=RETRY_S))
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_tcp_port(), ready_timeout=10)
    smtp.start()
    gateway = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    trunk_port = free_udp_port()
    nobody = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the secretary's phone: must never ring
    nobody.bind(("127.0.0.1", 0))
    nobody.settimeout(0)
    config = base_config(root, dialplans, REPO / "prompts", workers=2,
                         agents={"*": [f"sip:secretary@127.0.0.1:{nobody.getsockname()[1]}"]}, sip=edge_config(root))
    config["controller"]["outbound_trunk"] = f"127.0.0.1:{trunk_port}"
    config["watch"] = {"enabled": True, "caller_number": FIRST, "caller_range": 4, "tick_seconds": 1,
                       "contact_email": [SECRETARIAT_EMAIL], "contact_sms": [SECRETARIAT_SMS]}
    config["escalation"] = {"sms_url": f"http://127.0.0.1:{gateway.server_address[1]}/sms",
                            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_starttls": False,
                            "smtp_from": "veille@telesecretariat.example"}
    svc = ServeProcess(root, config).start()
    prometheus = None
    try:
        prometheus = Prometheus(root / "prometheus", f"127.0.0.1:{svc.metrics_port}")
        svc.wait_edge_ready(2)
        token = sign_in(svc, add_supervisor(svc))
        yield Watching(root, svc, trunk_port, mailbox, token, nobody, prometheus)
    finally:
        if prometheus is not None:
            prometheus.stop()
        stray = svc.stop()
        smtp.stop()
        gateway.shutdown()
        nobody.close()
        assert not stray, f"processes left running after stop (Kamailio included): {stray}"


@pytest.fixture
def service(watching):
    try:
        yield watching
    finally:
        watching.kill_started()


def metric(svc, name: str, practice: str, **labels: str) -> float:
    wanted = [f'practice="{practice}"', *(f'{k}="{v}"' for k, v in labels.items())]
    return sum(v for k, v in svc.metrics().items() if k.startswith(name + "{") and all(w in k for w in wanted))


def test_a_forwarded_line_passes_and_its_call_back_is_never_a_call(service):
    svc = service.svc
    twin = free_tcp_port()
    trunk_side, forward_side = operator.forwarding(service.root / "operator", service.edge_port)
    forward = service.operator(forward_side, port=free_udp_port(), remote=("127.0.0.1", service.edge_port),
                               extra=["-3pcc", f"127.0.0.1:{twin}"])
    wait_for(lambda: forward.proc.poll() is not None or tcp_listening(twin), timeout=10)
    trunk = service.operator(trunk_side, extra=["-3pcc", f"127.0.0.1:{twin}"])
    run = service.verdict("watch-pass", service.test_now("watch-pass")["id"])
    assert (run["state"], run["outcome"], run["trigger"]) == ("passed", "passed", "sophie")
    assert 0 < run["rtt_ms"] < TIMEOUT_S * 1000
    [attempt] = run["attempts"]
    assert attempt["outcome"] == "passed" and attempt["name_kept"] is True  # this operator keeps names
    assert trunk.wait(20) == 0, trunk.errors()  # our call was cancelled once it had come back
    assert forward.wait(20) == 0, forward.errors()  # the call back was refused 603, before any answer
    assert forward.received("ACK") == 0 and "SIP/2.0 200" not in forward.messages.read_text()
    # Never a call: no record, nothing counted, no secretary rung.
    time.sleep(1)
    assert svc.calls() == []
    assert metric(svc, "callrouter_calls_total", "watch-pass") == 0
    with pytest.raises(BlockingIOError):
        service.nobody.recv(65535)
    assert metric(svc, "callrouter_forwarding_watch_calls_total", "watch-pass", outcome="passed") == 1
    assert metric(svc, "callrouter_forwarding_watch_failing", "watch-pass") == 0
    assert svc.metrics()["callrouter_active_calls"] == 0
    assert service.mailbox.to("watch-pass@example.fr") == [] and to(practice_sms("watch-pass")) == []
    log = svc.log_tail(400000)
    assert "33100000301" not in log and "33180000100" not in log and "0180000100" not in log


def tcp_listening(port: int) -> bool:
    """Something listens on the TCP port (read from /proc: a probe connection would be taken by the
    twin SIPp for its peer)."""
    wanted = f":{port:04X}"
    with open("/proc/net/tcp") as table:
        return any(fields[1].endswith(wanted) and fields[3] == "0A"
                   for fields in (line.split() for line in list(table)[1:]))


def failed_once_alerting_everyone(service, practice: str, outcome: str, scenario) -> dict:
    svc = service.svc
    line = service.operator(scenario, calls=2)
    run = service.verdict(practice, service.test_now(practice)["id"], timeout=TIMEOUT_S * 2 + RETRY_S + 30)
    assert (run["state"], run["outcome"], run["alarm"]) == ("failed", outcome, True)
    assert [a["outcome"] for a in run["attempts"]] == [outcome, outcome]  # one retry before alerting
    assert line.wait(30) == 0, line.errors()
    first, second = (dt.datetime.fromisoformat(a["started_at"]) for a in run["attempts"])
    assert (second - first).total_seconds() >= RETRY_S
    assert metric(svc, "callrouter_forwarding_watch_failing", practice) == 1
    assert metric(svc, "callrouter_forwarding_watch_calls_total", practice, outcome=outcome) == 2
    reference = f"V{run['id']}"

    def alerted():
        mails = service.mailbox.to(f"{practice}@example.fr") + [
            m for m in service.mailbox.to(SECRETARIAT_EMAIL) if reference in m.get_content()]
        sms = to(practice_sms(practice)) + [m for m in to(SECRETARIAT_SMS) if f"watch-{run['id']}-" in m["key"]]
        return (mails, sms) if len(mails) == 2 and len(sms) == 2 else None

    got = wait_for(alerted, timeout=20, interval=0.2)
    assert got is not None, f"alerts: {service.mailbox.mails} {Gateway.received}\n{svc.log_tail()}"
    mails, sms = got
    assert mails[0]["Subject"] == (f"[ALERTE] Cabinet {practice} : le renvoi d'appel de la ligne "
                                   f"01 00 00 03 0{PRACTICES[practice][-1]} ne fonctionne plus")
    assert "Vérifiez le renvoi auprès de l'opérateur" in sms[0]["text"]
    time.sleep(2)
    assert alerted() == got  # once: nothing more comes
    assert svc.calls() == []
    return run


def test_a_line_answered_at_the_practice_fails_after_one_retry_and_alerts_once(service):
    run = failed_once_alerting_everyone(service, "watch-answer", "answered", operator.answering(service.root / "operator"))
    assert all(a["rang"] for a in run["attempts"])


def test_a_busy_line_fails_after_one_retry_and_alerts_once(service):
    run = failed_once_alerting_everyone(service, "watch-busy", "busy", operator.busy(service.root / "operator"))
    assert [a["sip_code"] for a in run["attempts"]] == [486, 486]
    # The alert rule fires in a real Prometheus, for the practices whose last watch failed only.
    fired = wait_for(lambda: "watch-busy" in service.prometheus.firing("CallrouterForwardingBroken"), timeout=30,
                     interval=0.5)
    assert fired, service.prometheus.log.read_text(errors="replace")[-2000:]
    assert "watch-pass" not in service.prometheus.firing("CallrouterForwardingBroken")


def test_a_line_that_never_comes_back_fails_after_one_retry_and_alerts_once(service):
    run = failed_once_alerting_everyone(service, "watch-silent", "no_return", operator.silent(service.root / "operator"))
    for attempt in run["attempts"]:
        took = dt.datetime.fromisoformat(attempt["ended_at"]) - dt.datetime.fromisoformat(attempt["started_at"])
        assert TIMEOUT_S - 0.5 <= took.total_seconds() < TIMEOUT_S + 3
