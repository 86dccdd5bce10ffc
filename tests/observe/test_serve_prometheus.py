"""The dashboards and the alert rules against a real Prometheus scraping a real `callrouter serve`.

One service for the module (Kamailio edge with TLS, two pjsua2 workers, MQTT), one secretary's
softphone registered at the edge (SIPp), patients calling through Kamailio (SIPp). Debian's
Prometheus, started here on loopback, scrapes the service every second and evaluates the quick copy
of the rules (callrouter.observe.rules.QUICK: the same expressions, `for:` of 3 s). The secretary
answers the first patient and stays on that call; the second patient waits past the service-level
threshold (30 s), so the practice's service level drops to 1/2 and the alert fires.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

from callrouter.devtools.serve import ServeProcess, base_config, edge_config, free_tcp_port
from callrouter.observe import local, rules
from callrouter.observe.dashboards import DASHBOARDS
from callrouter.observe.grafana import PRACTICE, PRACTICE_QUERY
from callrouter.observe.service_level import DEFAULTS
from tests.app.acd_support import Acd, Practice, add_secretaries
from tests.app.conftest import prompts_built  # noqa: F401 - the session fixture building the prompts
from tests.factories import REPO
from tests.needs import missing
from tests.sip.harness import wait_for

pytestmark = pytest.mark.integration

SLOW = Practice("obs-slow", "+33100000301", ("sam",))
QUIET = Practice("obs-quiet", "+33100000302", ())
DIALPLAN = """\
practice: {practice}
name: Cabinet {practice}
timezone: Europe/Paris
numbers: ["{number}"]
hours:
  daily: ["00:00-24:00"]
queues:
  general: {{label: Secrétariat, wrap_up: 1s, announce_interval: 300s}}
ivr:
  triage:
    prompt: triage_menu
    timeout: 3s
    retries: 0
    on_timeout: {{queue: general}}
    options:
      "1": {{reason: urgence vitale, tier: vital}}
      "3": {{reason: rendez-vous, queue: general}}
routes:
  open: {{ivr: triage}}
  closed: {{ivr: triage}}
  holiday: {{ivr: triage}}
  overflow: {{wait_max: 120s, queue_max: 10, then: {{voicemail: true}}}}
practitioners:
  - {{id: dr-a, name: Dr A, phone: "+33600000001"}}
on_call:
  until: 2099-12-31
  weekly:
    - {{days: mon-sun, hours: "08:00-20:00", who: dr-a}}
escalation:
  tiers:
    vital:
      announce: call_15
      steps:
        - {{sms: on_call}}
"""


class Prometheus:
    """Debian's prometheus on a free loopback port, its data under `root`."""

    def __init__(self, root: Path, target: str) -> None:
        binary = local.binary()
        if binary is None:
            missing("prometheus is missing: Debian package prometheus (scripts/ensure-system-deps)")
        root.mkdir(parents=True, exist_ok=True)
        quick = root / "rules.yml"
        quick.write_text(rules.render(rules.QUICK))
        config = local.write_config(root / "prometheus.yml", [target], [quick], scrape_interval="1s")
        self.address = f"127.0.0.1:{free_tcp_port()}"
        self.log = root / "prometheus.log"
        self.proc = subprocess.Popen(local.command(binary, config, root / "data", self.address),
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        ready = wait_for(lambda: self._ready(), timeout=30, interval=0.2)
        assert ready, self.log.read_text(errors="replace")[-3000:]
        # Its targets are applied a few seconds after start: the counters must be seen at 0 before a call.
        scraping = wait_for(lambda: self.query('count_over_time(up{job="callrouter"}[1m]) >= 2'), timeout=30,
                            interval=0.5)
        assert scraping, self.log.read_text(errors="replace")[-3000:]

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.address}/-/ready", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def get(self, path: str, **params: str) -> Any:
        url = f"http://{self.address}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as reply:
            body = json.loads(reply.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.get("/api/v1/query", query=expr)["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait(self, what: Callable[[], Any], timeout: float, message: str) -> Any:
        got = wait_for(what, timeout=timeout, interval=0.5)
        assert got, message
        return got

    def alerts(self, name: str, practice: str) -> list[str]:
        """The states (pending, firing) of alert `name` for `practice`."""
        return [a["state"] for a in self.get("/api/v1/alerts")["alerts"]
                if a["labels"].get("alertname") == name and a["labels"].get("practice") == practice]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def world(tmp_path_factory, prompts_built):  # noqa: F811 - the imported fixture
    root = tmp_path_factory.mktemp("observe")
    if shutil.which("prometheus") is None:
        missing("prometheus is missing: Debian package prometheus (scripts/ensure-system-deps)")
    dialplans = root / "dialplans"
    dialplans.mkdir()
    for p in (SLOW, QUIET):
        (dialplans / f"{p.name}.yaml").write_text(DIALPLAN.format(practice=p.name, number=p.number))
    sip = {**edge_config(root), "tls_port": free_tcp_port()}  # the certificate's expiry is a panel
    config = base_config(root, dialplans, REPO / "prompts", workers=2, agents={f"{SLOW.name}/*": ["sam"]}, sip=sip)
    svc = ServeProcess(root, config).start()
    acd, prometheus = None, None
    try:
        svc.wait_edge_ready(2)
        acd = Acd(svc, root, {p.name: p for p in (SLOW, QUIET)}, totp_secrets=add_secretaries(svc.db_url, {"sam": SLOW.name}))
        prometheus = Prometheus(root / "prometheus", f"127.0.0.1:{svc.metrics_port}")
        yield acd, prometheus
    finally:
        if prometheus is not None:
            prometheus.stop()
        if acd is not None:
            acd.kill_started()
        stray = svc.stop()
        assert not stray, f"processes left running after stop (Kamailio included): {stray}"


def test_every_panel_has_data_and_the_service_level_alert_fires_on_calls_left_waiting(world):
    acd, prom = world
    started = time.monotonic()
    sam = acd.softphone("sam")
    sam.register()
    acd.wait_registered()
    sam.take([("answer", 300, 60000), ("answer", 300, 1000)], timeout_s=100)
    # Patient 1 chooses 3 (appointment) and is answered at once; sam stays on the call.
    acd.patient(SLOW.name, "+33611110001", [("pause", 1000), ("digit", "3")], wait_bye_ms=90000)
    prom.wait(lambda: prom.value(f'callrouter:service_level:ratio15m{{practice="{SLOW.name}"}}') == 1, 30,
              "the first call, answered in time, never showed in the service level")
    # Patient 2 waits: sam is busy. Until the threshold passes the service level holds.
    acd.patient(SLOW.name, "+33611110002", [("pause", 1000), ("digit", "3")], wait_bye_ms=90000)
    prom.wait(lambda: prom.value(f'callrouter_queue_waiting{{practice="{SLOW.name}"}}') == 1, 20,
              "the second call never waited in the queue")
    queued = time.monotonic()
    assert prom.alerts("CallrouterServiceLevelBelowTarget", SLOW.name) == []

    check_every_panel(prom)

    prom.wait(lambda: prom.alerts("CallrouterServiceLevelBelowTarget", SLOW.name) == ["firing"], 60,
              "the service-level alert did not fire")
    assert time.monotonic() - queued >= DEFAULTS.sl_threshold_s - 2  # not before the threshold passed
    assert prom.value(f'callrouter:service_level:ratio15m{{practice="{SLOW.name}"}}') == 0.5
    assert prom.alerts("CallrouterServiceLevelBelowTarget", QUIET.name) == []  # no call, no rate, no alert
    # What the practice's panels are made of, as counted.
    assert prom.value(f'sum(callrouter_calls_for_secretary_total{{practice="{SLOW.name}"}})') == 2
    assert prom.value(f'sum(callrouter_calls_answered_in_threshold_total{{practice="{SLOW.name}"}})') == 1
    assert prom.value(f'sum(callrouter_ivr_choices_total{{practice="{SLOW.name}", digit="3"}})') == 2
    assert prom.value('sum(callrouter_secretaries{state="on_call"})') == 1
    assert prom.value(f'max(callrouter_queue_oldest_wait_seconds{{practice="{SLOW.name}"}})') >= 25
    for healthy in ("callrouter_edge_up", "callrouter_database_up", "callrouter_events_broker_connected"):
        assert prom.value(healthy) == 1, healthy
    assert prom.value('count(callrouter_child_memory_bytes > 1e6)') == 3  # w0, w1 and the edge
    assert time.monotonic() - started < 100


def check_every_panel(prom: Prometheus) -> None:
    """Every expression of every dashboard, the practice variable set, returns a series; so does the
    practice variable's own query."""
    series = PRACTICE_QUERY.removeprefix("label_values(").removesuffix(", practice)")
    practices = prom.get("/api/v1/label/practice/values", **{"match[]": series})
    assert SLOW.name in practices and QUIET.name in practices
    empty = []
    for dashboard in DASHBOARDS:
        for expr in dashboard.expressions():
            concrete = expr.replace(PRACTICE, SLOW.name)
            if not prom.query(concrete):
                empty.append(f"{dashboard.uid}: {concrete}")
    assert empty == []
