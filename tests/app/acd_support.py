"""The ACD behind the real edge: one `callrouter serve` (Kamailio, workers, controller) with a
practice per behaviour under test, secretaries' softphones that REGISTER with digest auth and take
their offers through SIPp, and patients calling through Kamailio.

Each practice has its own secretaries, so the tests sharing the service do not see each other's
calls or secretaries' states.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from argon2 import PasswordHasher

from callrouter.auth import passwords
from callrouter.auth.sealing import KeyFileBox
from callrouter.auth.totp import code_at
from callrouter.devtools import sipp as scen
from callrouter.devtools.serve import ServeProcess, base_config, edge_config
from callrouter.store.audit import Actor
from callrouter.store.db import Database
from callrouter.store.users import UserRepository
from tests.factories import REPO
from tests.media.harness import RtpSink
from tests.media.harness import Sipp as MediaSipp
from tests.sip.harness import Sipp, free_port, wait_for
from tests.sip.sipclient import SipClient

SIP_PASSWORD = "Un-mot-de-passe-SIP-solide-42"
CONSOLE_PASSWORD = "Console-Passw0rd-long!"
REALM = "callrouter"  # the service's default auth.sip_realm
ADMIN = Actor("test", "127.0.0.1")
RING_TIMEOUT_S = 3.0
MAX_MISSED_OFFERS = 2

DIALPLAN = """\
practice: {practice}
name: Cabinet {practice}
timezone: Europe/Paris
numbers: ["{number}"]
hours:
  daily: ["00:00-24:00"]
queues:
  general: {{label: Secrétariat, wrap_up: {wrap_up}, announce_interval: 300s}}
  urgent: {{label: Urgences, priority: 10, wrap_up: 1s, announce_interval: 300s}}
ivr:
  triage:
    prompt: triage_menu
    timeout: 3s
    retries: 0
    on_timeout: {{queue: general}}
    options:
      "2": {{reason: urgence, queue: urgent}}
      "3": {{reason: rendez-vous, queue: general}}
routes:
  open: {route}
  closed: {route}
  holiday: {route}
  overflow: {{wait_max: {wait_max}, queue_max: {queue_max}, then: {overflow}}}
"""


@dataclass(frozen=True)
class Practice:
    """A practice of the test service and the secretaries (usernames) who cover it. `menu`: calls
    go through the triage menu (2: urgent queue, 3: general); else straight to the general queue."""

    name: str
    number: str
    secretaries: tuple[str, ...]
    wrap_up: str = "1s"
    wait_max: str = "60s"
    queue_max: int = 10
    menu: bool = False
    overflow: str = "{voicemail: true}"  # the overflow route's action

    def dialplan(self) -> str:
        route = "{ivr: triage}" if self.menu else "{queue: general}"
        return DIALPLAN.format(practice=self.name, number=self.number, wrap_up=self.wrap_up, route=route,
                               wait_max=self.wait_max, queue_max=self.queue_max, overflow=self.overflow)


@dataclass
class Acd:
    """The running service, what the tests started on it, and how to read what it did."""

    svc: ServeProcess
    root: Path
    practices: dict[str, Practice]
    registered: set[str] = field(default_factory=set)
    totp_secrets: dict[str, str] = field(default_factory=dict)  # username -> her TOTP secret
    started: list[Any] = field(default_factory=list)  # SIPp runs, killed when the test ends
    sinks: list[RtpSink] = field(default_factory=list)  # their RTP ports, closed when the test ends

    @property
    def edge(self) -> tuple[str, int]:
        return ("127.0.0.1", self.svc.config["sip"]["udp_port"])

    def uri(self, username: str) -> str:
        """How the service names a registered secretary in its records (her AOR at the edge)."""
        return f"sip:{username}@127.0.0.1:{self.edge[1]}"

    def softphone(self, username: str) -> "Softphone":
        return Softphone(self, username, free_port())

    def rtp_sink(self) -> RtpSink:
        sink = RtpSink()
        self.sinks.append(sink)
        return sink

    def rtp_port(self) -> str:
        return str(self.rtp_sink().port)

    def api(self, method: str, path: str, token: str | None = None, body: dict | None = None) -> tuple[int, Any]:
        """One request to the service's HTTP API: (status, decoded JSON body)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.svc.config['http']['port']}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode())
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def sign_in(self, username: str) -> str:
        """Her console's sign-in (POST /api/login with password and TOTP code): a bearer token."""
        code = code_at(self.totp_secrets[username], dt.datetime.now(dt.timezone.utc))
        status, body = self.api("POST", "/api/login", body={"username": username, "password": CONSOLE_PASSWORD,
                                                              "totp": code})
        assert status == 200, body
        return body["token"]

    def patient(self, practice: str, caller: str, steps: list[tuple] = (), wait_bye_ms: int = 60000,
                end: str = "wait_bye") -> MediaSipp:
        """A patient calling the practice's number through the edge: `steps` after the service
        answers (see sipp.caller), then waits for the service's BYE (or hangs up: end="bye")."""
        name = f"patient-{caller.lstrip('+')}"
        workdir = self.root / name
        workdir.mkdir(exist_ok=True)
        scenario = scen.caller(workdir, name, list(steps), end=end, wait_bye_ms=wait_bye_ms)
        run = MediaSipp(str(scenario), remote_port=self.edge[1], service=self.practices[practice].number,
                        variables={"rtp_port": self.rtp_port(), "caller": caller}, workdir=workdir,
                        timeout_s=max(60, wait_bye_ms // 1000 + 30))
        self.started.append(run)
        return run

    def wait_registered(self, timeout: float = 20) -> None:
        """Until the controller's poll of the edge sees exactly the softphones registered now."""
        self.svc.wait_metric("callrouter_secretaries_registered", lambda v: v == len(self.registered), timeout)

    def record(self, caller: str, until: Callable[[Any], bool] = lambda r: r.ended_at is not None,
               timeout: float = 60) -> Any:
        """The stored record of the patient `caller`'s call, once `until` holds for it."""
        def found():
            mine = [r for r in self.svc.calls() if r.caller == caller]
            return mine[0] if mine and until(mine[0]) else None

        record = wait_for(found, timeout=timeout, interval=0.2)
        assert record is not None, f"no record of the call from {caller[:6]}... matching; log:\n{self.svc.log_tail()}"
        return record

    def kill_started(self) -> None:
        while self.started:
            self.started.pop().kill()
        while self.sinks:
            self.sinks.pop().close()


@dataclass
class Softphone:
    """A secretary's softphone on one loopback port: registered from that port with digest auth
    (so the edge reaches her there), then SIPp on the same port takes the offered calls."""

    acd: Acd
    username: str
    port: int
    runs: list[Sipp] = field(default_factory=list)
    sinks: list[RtpSink] = field(default_factory=list)  # the RTP port of each run, what reached her there

    def register(self, expires: int = 600) -> None:
        """REGISTER (expires=0: unregister) from her port; the port must be free (no SIPp on it)."""
        client = SipClient(self.acd.edge, bind_port=self.port)
        try:
            response = client.register(self.username, SIP_PASSWORD, expires=expires)
        finally:
            client.close()
        assert response is not None and response.status == 200, response and response.raw
        if expires:
            self.acd.registered.add(self.username)
        else:
            self.acd.registered.discard(self.username)

    def unregister(self) -> None:
        self.register(expires=0)

    def take(self, plan: list[tuple[str, int, int]], timeout_s: int = 120) -> Sipp:
        """SIPp answering on her port for the next len(plan) offers, each as `plan` says
        (see sipp.softphone_plan: ("answer", ring_ms, talk_ms) or ("ignore", 0, 0))."""
        n = len(self.runs)
        workdir = self.acd.root / "softphones"
        workdir.mkdir(exist_ok=True)
        scenario = scen.softphone(workdir, f"{self.username}-{n}")
        injection = scen.softphone_plan(workdir, f"{self.username}-{n}", plan)
        self.sinks.append(self.acd.rtp_sink())
        run = Sipp(workdir, str(scenario), port=self.port, calls=len(plan), timeout_s=timeout_s,
                   extra=["-inf", str(injection), "-set", "rtp_port", str(self.sinks[-1].port)], name=self.username)
        self.runs.append(run)
        self.acd.started.append(run)
        listening = wait_for(lambda: run.proc.poll() is not None or udp_port_taken(self.port), timeout=10)
        assert listening and run.proc.poll() is None, run.errors()  # on her port before any offer comes
        return run

    def finish(self, timeout: float = 90) -> None:
        """Until her current SIPp has taken all its planned calls, successfully."""
        run = self.runs[-1]
        code = run.wait(timeout)
        assert code == 0, f"{self.username}'s softphone: exit {code}\n{run.errors()}"

    def offers(self) -> list[str]:
        """The service's call ids of every call offered to her (INVITEs received), in order."""
        return [call_id for run in self.runs for call_id in offered_call_ids(run)]


def offered_call_ids(run: Sipp) -> list[str]:
    """X-Callrouter-Call-Id of each INVITE a SIPp run received (its message trace), in order;
    retransmissions counted once."""
    if not run.messages.exists():
        return []
    out: list[str] = []
    for block in run.messages.read_text(errors="replace").split("----------------------------------------------"):
        if "message received" in block and "\nINVITE sip:" in block:
            match = re.search(r"^X-Callrouter-Call-Id:\s*(\S+)", block, re.MULTILINE | re.IGNORECASE)
            if match and match.group(1) not in out:
                out.append(match.group(1))
    return out


def udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def start_acd(root: Path, practices: list[Practice], outbound_trunk: str | None = None,
              login_required: bool = False, escalation: dict | None = None, workers: int = 2,
              controller: dict | None = None, service: Any = ServeProcess) -> Acd:
    """`callrouter serve` with the edge, `workers` workers and `practices`; their secretaries are users
    with a SIP password, none registered yet. `outbound_trunk`: where patients are called back.
    `login_required`: as in production, a registered softphone is offered calls only once its
    secretary has logged in through the API (Acd.sign_in, then POST /api/secretaries/me/login).
    `escalation`: the service's escalation settings (e.g. an SMS gateway the test serves);
    `controller`: more controller settings over the tests' own; `service`: how it runs (a
    ServeProcess, or a class taking the same (root, config) that runs the parts apart)."""
    dialplans = root / "dialplans"
    dialplans.mkdir()
    for practice in practices:
        (dialplans / f"{practice.name}.yaml").write_text(practice.dialplan())
    config = base_config(root, dialplans, REPO / "prompts", workers=workers,
                         agents={f"{p.name}/*": list(p.secretaries) for p in practices}, sip=edge_config(root))
    config["controller"].update({"ring_timeout_s": RING_TIMEOUT_S, "pop_lead_s": 0.05, "max_missed_offers": MAX_MISSED_OFFERS,
                                 "login_required": login_required})
    config["controller"].update(controller or {})
    if outbound_trunk:
        config["controller"]["outbound_trunk"] = outbound_trunk
    if escalation:
        config["escalation"] = escalation
    svc = service(root, config).start()
    try:
        svc.wait_edge_ready(workers)
        secrets = add_secretaries(svc.db_url, {name: p.name for p in practices for name in p.secretaries},
                                  key_file=Path(config["var_dir"]) / "secrets.key")
    except BaseException:
        svc.stop()
        raise
    return Acd(svc, root, {p.name: p for p in practices}, totp_secrets=secrets)


@contextlib.contextmanager
def running_acd(root: Path, practices: list[Practice], **options: Any) -> Iterator[Acd]:
    """`start_acd` for a fixture: the SIPp phones it started are killed and the service stopped
    after, and nothing may be left running (Kamailio included)."""
    acd = start_acd(root, practices, **options)
    try:
        yield acd
    finally:
        acd.kill_started()
        stray = acd.svc.stop()
        assert not stray, f"processes left running after stop (Kamailio included): {stray}"


def add_supervisor(acd: "Acd", username: str, display_name: str) -> str:
    """A supervisor user with CONSOLE_PASSWORD, her TOTP secret sealed with the running service's
    key file (as it reads them); returns the secret."""
    db = Database.from_url(acd.svc.db_url)
    hasher = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        key_file = Path(acd.svc.config["var_dir"]) / "secrets.key"
        users = UserRepository(db, sip_realm=REALM, totp_box=KeyFileBox(key_file))
        return users.add(ADMIN, username, display_name, "supervisor", CONSOLE_PASSWORD,
                         dt.datetime.now(dt.timezone.utc)).totp_secret
    finally:
        passwords._hasher = hasher
        db.dispose()


def add_secretaries(db_url: str, who: dict[str, str], key_file: Path | None = None) -> dict[str, str]:
    """Secretary users (username -> practice) with the SIP password the softphones register with
    and CONSOLE_PASSWORD; returns username -> TOTP secret (to sign in to the API). `key_file`: the
    running service's TOTP key file (its secrets are sealed with it, as the service reads them)."""
    db = Database.from_url(db_url)
    hasher = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # console password: cheap
    try:
        box = KeyFileBox(key_file) if key_file is not None and key_file.exists() else None
        users = UserRepository(db, sip_realm=REALM, totp_box=box)
        now = dt.datetime.now(dt.timezone.utc)
        return {username: users.add(ADMIN, username, username.title(), "secretary", CONSOLE_PASSWORD, now,
                                    practices=(practice,), sip_password=SIP_PASSWORD).totp_secret
                for username, practice in who.items()}
    finally:
        passwords._hasher = hasher
        db.dispose()


def seconds(later: dt.datetime, earlier: dt.datetime) -> float:
    return (later - earlier).total_seconds()


def sleep_until(moment: dt.datetime) -> None:
    """Wait until a moment of the service's clock (the wall clock: the records' times)."""
    left = seconds(moment, dt.datetime.now(dt.timezone.utc))
    if left > 0:
        time.sleep(left)


def secretary_legs(record) -> list:
    """The offers of a call (its secretary legs), in the order they rang."""
    return sorted((leg for leg in record.legs if leg.kind == "secretary"), key=lambda leg: (leg.started_at, leg.id))
