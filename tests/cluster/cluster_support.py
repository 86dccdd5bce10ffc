"""Shared pieces of the whole-service tests with several `callrouter serve` nodes: a node's
settings (its edge on its own loopback address, registrations in the database, its peers' edges,
the shared desk), a secretary's registered SIPp softphone, and what her phone's message trace
tells (the most calls she had at once)."""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from callrouter.devtools import sipp_xml as x
from callrouter.devtools.serve import base_config, edge_config, free_udp_port
from tests.app.acd_support import SIP_PASSWORD  # what its add_secretaries gives them
from tests.factories import REPO
from tests.sip.harness import Sipp, wait_for


def node_config(root: Path, address: str, db_url: str, dialplan: str, agents: dict, workers: int = 3,
                sip: dict | None = None) -> dict:
    """A node of one database serving `dialplan` through its edge on `address`, on the shared desk.
    The nodes of one database share its key files (docs/security.md): they are beside `root`."""
    dialplans = root / "dialplans"
    dialplans.mkdir(parents=True)
    (dialplans / "practice.yaml").write_text(dialplan)
    sip = edge_config(root) | {"listen_address": address, "trusted_trunks": ["127.0.0.1"]} | (sip or {})
    config = base_config(root, dialplans, REPO / "prompts", workers=workers, agents=agents, sip=sip)
    config["database_url"] = db_url
    config["media"]["bind"] = address
    config["controller"].update({"ring_timeout_s": 6.0, "pop_lead_s": 0.0})
    config["cluster"] = {"shared_desk": True, "lease_seconds": 10, "renew_seconds": 2}
    keys = root.parent / "keys"
    config["auth"] = {"secrets_key_file": str(keys / "secrets.key"), "audit_key_file": str(keys / "audit.key")}
    return config


def peer_edges(configs: list[dict]) -> None:
    """Each node's edge keeps its registrations in the database and lists the others' as peers."""
    for config in configs:
        config["sip"].update(registrations="database", peer_edges=[
            f"{other['sip']['listen_address']}:{other['sip']['udp_port']}" for other in configs if other is not config])


def secretary_scenario(directory: Path, name: str, ring_ms: int, talk_ms: int) -> Path:
    """A registered secretary's softphone for any number of offers: each rings `ring_ms`, is
    answered, then ends with the other side's BYE or her own after `talk_ms`, whichever first (a
    callback she answers is hung up by the service when the patient's line fails)."""
    contact, reply = x.uas_reply(name)
    answer = x.uas_answer(name, reply + "      [last_Record-Route:]\n", ring_ms)  # as a phone: the edge's route
    talk = x.WAIT_BYE.format(timeout_ms=f'{talk_ms}" ontimeout="hangup')  # the BYE, or hers on time
    body = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
  <Global variables="rtp_port"/>
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller_from"/>
      <ereg regexp="sips?:[^>;]*" search_in="hdr" header="Contact:" assign_to="caller_contact"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
{reply}      Content-Length: 0

    ]]>
  </send>
{answer}{talk}  <nop next="done"/>
  <label id="hangup"/>
{x.uas_bye(name, contact)}  <label id="done"/>
  <Reference variables="caller_from,caller_contact"/>
</scenario>
"""
    path = directory / f"{name}.xml"
    path.write_text(body)
    return path


@dataclass
class Secretary:
    """A secretary's softphone on one loopback port: REGISTERed with her digest at one node's edge
    (SIPp, cluster_register.xml), then SIPp on the same port takes every call offered to her."""

    username: str
    port: int
    edge: tuple[str, int]
    runs: list[Sipp] = field(default_factory=list)  # her phone's SIPp runs, one after the other

    def register(self, workdir: Path, expires: int = 600) -> None:
        """REGISTER from her port at her edge; the port must be free (no phone run on it)."""
        run = Sipp(workdir, "cluster_register.xml", port=self.port, remote=self.edge, timeout_s=20,
                   name=f"register-{self.username}",
                   extra=["-set", "user", self.username, "-set", "expires", str(expires),
                          "-set", "contact", f"<sip:{self.username}@127.0.0.1:{self.port}>",
                          "-au", self.username, "-ap", SIP_PASSWORD])
        assert run.wait(30) == 0, run.errors()

    def take_calls(self, workdir: Path, ring_ms: int, talk_ms: int, most: int, timeout_s: int = 300) -> Sipp:
        scenario = secretary_scenario(workdir, f"phone-{self.username}", ring_ms, talk_ms)
        phone = Sipp(workdir, str(scenario), port=self.port, calls=most, timeout_s=timeout_s,
                     extra=["-set", "rtp_port", str(free_udp_port(even=True))], name=self.username)
        self.runs.append(phone)
        listening = wait_for(lambda: phone.proc.poll() is not None or udp_taken(self.port), timeout=10)
        assert listening and phone.proc.poll() is None, phone.errors()
        return phone

    def register_elsewhere(self, workdir: Path, edge: tuple[str, int], ring_ms: int, talk_ms: int, most: int) -> Sipp:
        """Her phone's failover to another edge (a second registrar): once its call in progress is
        over, it registers there and takes the calls again."""
        phone = self.runs[-1]
        assert wait_for(lambda: not calls_on(phone)[1], timeout=30), f"{self.username}'s call never ended"
        phone.kill()
        assert wait_for(lambda: not udp_taken(self.port), timeout=10)
        self.edge = edge
        self.register(workdir)
        return self.take_calls(workdir, ring_ms, talk_ms, most)

    def most_at_once(self) -> int:
        return max(calls_on(run)[0] for run in self.runs)

    def invites(self) -> int:
        return sum(run.received("INVITE") for run in self.runs)


def most_at_once(run: Sipp) -> int:
    """The most calls this phone had at once, from its message trace (in the order SIPp saw them):
    a call starts with the INVITE it received, ends with a BYE (sent or received) or a CANCEL."""
    return calls_on(run)[0]


def calls_on(run: Sipp) -> tuple[int, set[str]]:
    """(the most calls the phone had at once, the Call-IDs of those it has now): see most_at_once."""
    active: set[str] = set()
    most = 0
    text = run.messages.read_text(errors="replace") if run.messages.exists() else ""
    for block in text.split("----------------------------------------------"):
        lines = block.splitlines()
        head = next((i for i, line in enumerate(lines) if "message received" in line or "message sent" in line), None)
        if head is None:
            continue
        first = next((line for line in lines[head + 1:] if line.strip()), "")
        found = re.search(r"^Call-ID:\s*(\S+)", block, re.MULTILINE | re.IGNORECASE)
        if not found:
            continue
        call = found.group(1)
        if "message received" in block and first.startswith("INVITE "):
            active.add(call)
            most = max(most, len(active))
        elif first.startswith(("BYE ", "CANCEL ")):
            active.discard(call)
    return most, active


def out_of_order(records, offers) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The serving order across nodes as docs/operations.md states it: a call is offered before
    any call that joined the line after it, once its row was among those the later call's claim
    read (desk_offers.seen). Over the answered calls, each placed by its first offer (the
    database's clock, at its claim): (the pairs (earlier, later) offered the other way round
    although the claim saw the earlier one: the order broken; those where it had not seen it
    yet, its row not committed: what the order allows)."""
    first = {}
    for o in sorted(offers, key=lambda o: o.offered_at):
        first.setdefault(o.call_id, o)
    answered = [r for r in records if r.answered_at]
    assert all(r.id in first and first[r.id].seen is not None for r in answered), "an answered call never claimed"
    swapped = [(x.id, y.id) for x in answered for y in answered
               if x.queued_at < y.queued_at and first[y.id].offered_at < first[x.id].offered_at]
    broken = [(x, y) for x, y in swapped if x in json.loads(first[y].seen or "[]")]
    return broken, [pair for pair in swapped if pair not in broken]


def udp_taken(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def gone(pid: int) -> bool:
    """The process has exited (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1].split()[0] == "Z"
    except OSError:
        return True
