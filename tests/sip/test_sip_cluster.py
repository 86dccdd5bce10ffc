"""Two nodes' edges on one PostgreSQL: registrations shared through the location table.

Two real Kamailio edges configured by callrouter (sip.registrations: database, each the other's
peer edge) on 127.0.0.11 and 127.0.0.12, one real PostgreSQL schema; SIPp plays the secretary's
softphone (registering with her digest at edge A, then ringing) and the worker of node B dialling
her through edge B.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import text

from callrouter.sip.registrations import TableRegistrations
from callrouter.sip.settings import SipSettings
from callrouter.store.db import Database
from callrouter.store.testing import fresh_database
from tests.sip.conftest import REALM, SIP_PASSWORD, add_edge_users, edge_settings
from tests.sip.harness import KAMAILIO, SIPP, KamailioProc, Sipp, free_port, wait_for
from tests.sip.sipclient import SipClient, challenge_params, digest, parse_response

pytestmark = pytest.mark.integration

NODE_IPS = ("127.0.0.11", "127.0.0.12")
SECRETARY_IP = "127.0.0.31"


@dataclass
class Node:
    ip: str
    sip: SipSettings
    kamailio: KamailioProc
    workdir: Path

    @property
    def address(self) -> tuple[str, int]:
        return (self.ip, self.sip.udp_port)


@dataclass
class Cluster:
    a: Node
    b: Node
    db: Database
    workdir: Path

    def registered(self) -> dict:
        return TableRegistrations(self.db.engine).fetch()


@contextlib.contextmanager
def two_edges(tmp_path: Path, tls: bool = False) -> Iterator[Cluster]:
    """Edges A and B on one fresh PostgreSQL schema, each listing the other as its peer, both
    peers seen alive (answering probes) before the test starts; with `tls`, a TLS socket each."""
    if KAMAILIO is None or SIPP is None:
        pytest.fail("kamailio and sipp are needed (scripts/ensure-system-deps)")
    with fresh_database("postgresql", tmp_path) as db:
        add_edge_users(db, (("alice", SIP_PASSWORD), ("dave", SIP_PASSWORD)), disabled=())
        ports = [free_port(host=ip) for ip in NODE_IPS]
        settings = [edge_settings(listen_address=ip, udp_port=port, tcp_port=port,
                                  tls_port=free_port(host=ip) if tls else 0,
                                  registrations="database", min_expires_s=2,
                                  peer_edges=(f"{NODE_IPS[1 - i]}:{ports[1 - i]}",))
                    for i, (ip, port) in enumerate(zip(NODE_IPS, ports))]
        nodes: list[Node] = []
        try:
            for ip, sip in zip(NODE_IPS, settings):
                workdir = tmp_path / f"n{ip.rsplit('.', 1)[1]}"  # short: the control socket's path has a limit
                workdir.mkdir()
                nodes.append(Node(ip, sip, KamailioProc(workdir, sip, REALM, db.url), workdir))
            for node in nodes:
                assert wait_for(lambda: all(f.startswith("A") for f in peer_flags(node).values())), \
                    peer_flags(node)
            yield Cluster(nodes[0], nodes[1], db, tmp_path)
        finally:
            for node in nodes:
                node.kamailio.stop()


@pytest.fixture
def cluster(tmp_path):
    with two_edges(tmp_path) as c:
        yield c


@pytest.fixture
def tls_cluster(tmp_path):
    with two_edges(tmp_path, tls=True) as c:
        yield c


def dispatcher_flags(node: Node, set_id: int) -> dict[str, str]:
    """{destination URI: flags} of one dispatcher set ("AP": active, probing; "IP": inactive)."""
    flags = {}
    for record in node.kamailio.rpc.call("dispatcher.list")["RECORDS"]:
        if record["SET"]["ID"] == set_id:
            for target in record["SET"]["TARGETS"]:
                flags[target["DEST"]["URI"]] = target["DEST"]["FLAGS"]
    return flags


def peer_flags(node: Node) -> dict[str, str]:
    return dispatcher_flags(node, 2)


def register(c: Cluster, node: Node, user: str, contact: str, expires: int) -> None:
    """The secretary's softphone registers (digest) at `node`'s edge."""
    run = Sipp(c.workdir, "cluster_register.xml", local_ip=SECRETARY_IP, remote=node.address,
               timeout_s=20, name=f"register-{user}",
               extra=["-set", "user", user, "-set", "contact", contact, "-set", "expires", str(expires),
                      "-au", user, "-ap", SIP_PASSWORD])
    assert run.wait(30) == 0, run.errors() + node.kamailio.log_tail()


def start_worker_leg(c: Cluster, node: Node, user: str) -> Sipp:
    """A leg from `node`'s worker port 0 to `user` through `node`'s edge, under way."""
    return Sipp(c.workdir, "cluster_worker_leg.xml", local_ip=node.sip.worker_host,
                port=node.sip.worker_ports()[0], remote=node.address, timeout_s=30,
                name=f"leg-{user}", extra=["-set", "user", user, "-aa"])


def finish_worker_leg(run: Sipp, node: Node) -> int:
    """The leg's final status, once its SIPp has ended."""
    assert run.wait(40) == 0, run.errors() + node.kamailio.log_tail()
    return final_status(run)


def worker_leg(c: Cluster, node: Node, user: str) -> int:
    """A leg from `node`'s worker port 0 to `user` through `node`'s edge: its final status."""
    return finish_worker_leg(start_worker_leg(c, node, user), node)


def final_status(run: Sipp) -> int:
    text = run.messages.read_text(errors="replace")
    statuses = [int(m.group(1)) for block in text.split("-" * 46) if "message received" in block
                for m in [re.search(r"^SIP/2\.0 (\d{3}) ", block, re.M)] if m]
    finals = [s for s in statuses if s >= 200]
    assert finals, text[-3000:]
    return finals[0]


def phone(c: Cluster, port: int) -> Sipp:
    return Sipp(c.workdir, "cluster_secretary_uas.xml", local_ip=SECRETARY_IP, port=port, timeout_s=30,
                name="phone")


def test_a_secretary_registered_at_edge_a_is_rung_by_node_b_through_edge_a(cluster):
    a, b = cluster.a, cluster.b
    port = free_port(host=SECRETARY_IP)
    register(cluster, a, "alice", f"<sip:alice@{SECRETARY_IP}:{port}>", 600)
    contacts = cluster.registered()["alice"]
    assert [(x.address, x.socket) for x in contacts] == [
        (f"sip:alice@{SECRETARY_IP}:{port}", f"udp:{a.ip}:{a.sip.udp_port}")]
    assert 590 <= contacts[0].expires <= 600
    softphone = phone(cluster, port)
    try:
        assert worker_leg(cluster, b, "alice") == 486
        assert softphone.wait(30) == 0, softphone.errors()
        assert softphone.received("INVITE") == 1
        invite = softphone.messages.read_text(errors="replace")
        # edge B handed the leg to edge A, which holds her registration: A is the last hop
        vias = re.findall(r"^Via: SIP/2\.0/UDP ([0-9.]+:\d+)", invite, re.M)
        assert vias[:2] == [f"{a.ip}:{a.sip.udp_port}", f"{b.ip}:{b.sip.udp_port}"], vias
    finally:
        softphone.kill()


def test_unregistered_at_edge_a_she_is_unavailable_from_both_edges(cluster):
    a, b = cluster.a, cluster.b
    port = free_port(host=SECRETARY_IP)
    register(cluster, a, "alice", f"<sip:alice@{SECRETARY_IP}:{port}>", 600)
    assert "alice" in cluster.registered()
    register(cluster, a, "alice", "*", 0)
    assert "alice" not in cluster.registered()
    softphone = phone(cluster, port)
    try:
        assert worker_leg(cluster, b, "alice") in (404, 480)
        assert worker_leg(cluster, a, "alice") in (404, 480)
        assert softphone.received("INVITE") == 0
    finally:
        softphone.kill()


def test_a_registration_expires_for_every_edge_and_its_row_is_removed(cluster):
    a, b = cluster.a, cluster.b
    port = free_port(host=SECRETARY_IP)
    register(cluster, b, "dave", f"<sip:dave@{SECRETARY_IP}:{port}>", 4)
    assert [x.socket for x in cluster.registered()["dave"]] == [f"udp:{b.ip}:{b.sip.udp_port}"]
    assert wait_for(lambda: "dave" not in cluster.registered(), timeout=15)
    softphone = phone(cluster, port)
    try:
        # expired, though its row may still be in the table until an edge's cleaning timer runs
        assert worker_leg(cluster, a, "dave") in (404, 480)
        assert worker_leg(cluster, b, "dave") in (404, 480)
        assert softphone.received("INVITE") == 0
    finally:
        softphone.kill()

    def rows() -> int:
        with cluster.db.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM location")).scalar_one()

    assert wait_for(lambda: rows() == 0, timeout=30), rows()



class TlsPhone:
    """A softphone over one TLS connection from `bind_ip`, as a secretary's is: it registers with
    its digest and is rung over that same connection (it listens for no other)."""

    def __init__(self, server: tuple[str, int], bind_ip: str) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # our self-signed one
        raw = socket.create_connection(server, timeout=10, source_address=(bind_ip, 0))
        self.sock = context.wrap_socket(raw)
        self.builder = SipClient(server, bind_ip=bind_ip, via_transport="TLS")
        self.builder.close()  # only its message builder is used
        self.builder.port = self.sock.getsockname()[1]
        self._buffer = b""

    def read(self, timeout: float = 10.0) -> str | None:
        """The next whole SIP message on the connection, or None."""
        deadline = time.monotonic() + timeout
        while True:
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if sep:
                length = re.search(rb"(?im)^(?:content-length|l):\s*(\d+)", head)
                size = int(length.group(1)) if length else 0
                if len(rest) >= size:
                    self._buffer = rest[size:]
                    return (head + sep + rest[:size]).decode("utf-8", "replace")
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65535)
            except (socket.timeout, ssl.SSLError):
                return None
            if not chunk:
                return None
            self._buffer += chunk

    def register(self, user: str, password: str, expires: int = 600) -> int:
        ruri = f"sip:{self.builder.server[0]}"
        call_id = "%032x" % random.getrandbits(128)
        self.sock.sendall(self.builder.build("REGISTER", ruri, user, user, call_id, 1, [f"Expires: {expires}"]))
        challenge = parse_response((self.read() or "").encode())
        assert challenge is not None and challenge.status == 401, challenge
        params = challenge_params(challenge.header("WWW-Authenticate") or "")
        answer = digest("REGISTER", ruri, user, params["realm"], password, params["nonce"])
        auth = (f'Authorization: Digest username="{user}", realm="{params["realm"]}", '
                f'nonce="{params["nonce"]}", uri="{ruri}", response="{answer}", algorithm=MD5')
        self.sock.sendall(self.builder.build("REGISTER", ruri, user, user, call_id, 2,
                                             [f"Expires: {expires}", auth]))
        final = parse_response((self.read() or "").encode())
        return final.status if final else 0

    def receive_invite(self, timeout: float = 20.0) -> str | None:
        while (message := self.read(timeout)) is not None:
            if message.startswith("INVITE "):
                return message
        return None

    def reply(self, request: str, status: int, reason: str) -> None:
        head = request.split("\r\n\r\n", 1)[0].split("\r\n")
        keep = [line for line in head[1:] if line.split(":", 1)[0].strip().lower() in
                ("via", "from", "to", "call-id", "cseq", "record-route")]
        keep = [line + ";tag=tls-phone" if line.lower().startswith("to:") else line for line in keep]
        self.sock.sendall(("\r\n".join([f"SIP/2.0 {status} {reason}", *keep, "Content-Length: 0"])
                           + "\r\n\r\n").encode())

    def close(self) -> None:
        self.sock.close()


def test_a_softphone_registered_over_tls_at_edge_a_is_rung_over_its_own_connection(tls_cluster):
    """Why the leg goes through the edge she registered at: her TLS connection ends there (as a
    TCP one or a browser's WebSocket would), and edge B could not open one to her."""
    a, b = tls_cluster.a, tls_cluster.b
    phone = TlsPhone((a.ip, a.sip.tls_port), SECRETARY_IP)
    try:
        assert phone.register("alice", SIP_PASSWORD) == 200
        (contact,) = tls_cluster.registered()["alice"]
        assert contact.socket == f"tls:{a.ip}:{a.sip.tls_port}"
        assert contact.received == f"sip:{SECRETARY_IP}:{phone.builder.port};transport=tls"
        leg = start_worker_leg(tls_cluster, b, "alice")
        invite = phone.receive_invite()
        assert invite is not None, a.kamailio.log_tail() + b.kamailio.log_tail()
        assert "X-Callrouter-Call: call-42" in invite
        assert re.search(rf"^Via: SIP/2\.0/TLS {re.escape(a.ip)}:", invite, re.M), invite
        phone.reply(invite, 486, "Busy Here")
        assert finish_worker_leg(leg, b) == 486
    finally:
        phone.close()


def test_an_edge_keeps_ringing_its_own_secretaries_while_the_table_cannot_be_read(cluster):
    """Written through, not DB-only: lookups read the edge's memory, so losing the database (here
    the table made unreadable) does not cut the secretaries registered at that edge."""
    a = cluster.a
    port = free_port(host=SECRETARY_IP)
    register(cluster, a, "alice", f"<sip:alice@{SECRETARY_IP}:{port}>", 600)
    with cluster.db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE location RENAME TO location_away"))
    softphone = phone(cluster, port)
    try:
        assert worker_leg(cluster, a, "alice") == 486
        assert softphone.wait(30) == 0, softphone.errors()
    finally:
        softphone.kill()
        with cluster.db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE location_away RENAME TO location"))


def test_a_restarted_edge_takes_its_registrations_back_from_the_table(cluster):
    a, b = cluster.a, cluster.b
    port = free_port(host=SECRETARY_IP)
    register(cluster, a, "alice", f"<sip:alice@{SECRETARY_IP}:{port}>", 600)
    a.kamailio.stop()
    a.kamailio = KamailioProc(a.workdir, a.sip, REALM, cluster.db.url)
    assert wait_for(lambda: all(f.startswith("A") for f in peer_flags(b).values())), peer_flags(b)
    softphone = phone(cluster, port)
    try:
        assert worker_leg(cluster, b, "alice") == 486  # B -> restarted A -> her contact
        assert softphone.wait(30) == 0, softphone.errors()
    finally:
        softphone.kill()
