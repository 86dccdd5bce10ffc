"""Shared pieces of the whole-service tests with several `callrouter serve` nodes: a node's
settings (its edge on its own loopback address, registrations in the database, its peers' edges,
the shared desk), a secretary's registered SIPp softphone, and what her phone's message trace
tells (the most calls she had at once)."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path

from callrouter.devtools import sipp_xml as x
from callrouter.devtools.serve import base_config, edge_config, free_udp_port
from tests.factories import REPO
from tests.sip.harness import Sipp, wait_for

SIP_PASSWORD = "Un-mot-de-passe-SIP-solide-42"  # tests/app/acd_support.add_secretaries gives it


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
    phone: Sipp | None = None

    def register(self, workdir: Path, expires: int = 600) -> None:
        run = Sipp(workdir, "cluster_register.xml", port=self.port, remote=self.edge, timeout_s=20,
                   name=f"register-{self.username}",
                   extra=["-set", "user", self.username, "-set", "contact", f"<sip:{self.username}@127.0.0.1:{self.port}>",
                          "-set", "expires", str(expires), "-au", self.username, "-ap", SIP_PASSWORD])
        assert run.wait(30) == 0, run.errors()

    def take_calls(self, workdir: Path, ring_ms: int, talk_ms: int, most: int, timeout_s: int = 300) -> Sipp:
        scenario = secretary_scenario(workdir, f"phone-{self.username}", ring_ms, talk_ms)
        self.phone = Sipp(workdir, str(scenario), port=self.port, calls=most, timeout_s=timeout_s,
                          extra=["-set", "rtp_port", str(free_udp_port(even=True))], name=self.username)
        listening = wait_for(lambda: self.phone.proc.poll() is not None or udp_taken(self.port), timeout=10)
        assert listening and self.phone.proc.poll() is None, self.phone.errors()
        return self.phone


def most_at_once(run: Sipp) -> int:
    """The most calls this phone had at once, from its message trace (in the order SIPp saw them):
    a call starts with the INVITE it received, ends with a BYE (sent or received) or a CANCEL."""
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
    return most


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
