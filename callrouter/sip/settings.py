"""Settings of the Kamailio edge: one frozen value, validated once, rendered into Kamailio's config.

The SIP realm and the database URL are not repeated here: they come from the daemon's settings
(`auth.sip_realm`, `database_url`), so the digests the store writes and the ones Kamailio checks can
never disagree. `SipSettings` is meant to sit at `Settings.sip` in callrouter.config.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace

DISPATCH_ALGORITHMS = {"call-load": 10, "round-robin": 4}
REGISTRATIONS = ("memory", "database")
_ORIGIN_RE = re.compile(r"https?://([a-z0-9]([a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(:\d{1,5})?")
_HOST_PORT_RE = re.compile(r"(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(:(?P<port>\d{1,5}))?")


class SipSettingsError(ValueError):
    """Every problem found in SipSettings, one per entry in `problems`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class SipSettings:
    """Where Kamailio listens, whom it trusts, where it sends calls, and its limits."""

    enabled: bool = True
    # Listening sockets: one address, one port per transport (0 disables that transport).
    listen_address: str = "127.0.0.1"
    advertised_address: str | None = None  # public address written in Via/Record-Route, behind NAT
    udp_port: int = 5060
    tcp_port: int = 5060
    tls_port: int = 5061
    # SIP over secure WebSocket for the console's phone (0: off); needs tls_port (same certificate).
    wss_port: int = 0
    # The pages (origins, "https://host[:port]") whose WebSocket handshake the edge accepts; a
    # handshake naming another Origin gets 403. Empty: the console's own (the daemon derives them
    # from `http` and `controller.console_url`); "*": any.
    wss_origins: tuple[str, ...] = ()
    # Loopback-only HTTP port answering JSON-RPC (registrations); never exposed.
    rpc_port: int = 5099
    # Sources whose INVITEs are calls forwarded from practices' lines (IP addresses).
    trusted_trunks: tuple[str, ...] = ()
    # Media workers: `worker_count` pjsua2 processes on consecutive ports from `worker_base_port`.
    # The daemon takes these three from its media settings (see `aligned_with_media`).
    worker_host: str = "127.0.0.1"
    worker_base_port: int = 5070
    worker_count: int = 2
    # Calls dispatched to one worker at a time (0: no cap). A worker holds 4 legs with the PyPI
    # pjsua2 wheel and a call bridged to a secretary takes 2 of them.
    worker_max_calls: int = 2
    dispatch_algorithm: str = "call-load"
    worker_answer_timeout_ms: int = 2000  # no reply from a worker within this: try the next one
    worker_probe_interval_s: int = 5
    # Several nodes (docs/operations.md, "Several nodes"): "database" keeps the registrations in the
    # `location` table of the PostgreSQL every node shares (usrloc db_mode 1), "memory" in this
    # Kamailio only (one node). `peer_edges`: the other nodes' edges (address:UDP port, as they
    # listen), trusted like workers, tried when no worker of ours takes a call, and asked to ring
    # the secretaries registered at them.
    registrations: str = "memory"
    peer_edges: tuple[str, ...] = ()
    min_expires_s: int = 60  # shortest registration accepted (a shorter Expires is raised to it)
    # Outbound trunk (host[:port]) for callbacks and on-call legs; None: no outbound calls.
    outbound_trunk: str | None = None
    # Protections.
    max_message_bytes: int = 8192
    flood_window_s: int = 2
    flood_max_requests: int = 30  # per source per window before a ban
    ban_seconds: int = 300
    auth_failures_max: int = 5  # failed digests per source before a ban
    auth_failure_window_s: int = 600
    # Process.
    binary: str = "kamailio"
    children: int = 4
    shm_mb: int = 64
    pkg_mb: int = 8
    runtime_dir: str = "var/run/kamailio"
    tls_dir: str = "var/tls"
    # rtpengine, between the browsers' WebRTC media and the workers' plain RTP (used with wss_port).
    rtpengine_binary: str = "rtpengine"
    rtpengine_ng_port: int = 2223  # loopback UDP control port (the ng protocol)
    rtpengine_port_min: int = 30000
    rtpengine_port_max: int = 30999
    scanner_user_agents: tuple[str, ...] = field(default=(
        "friendly-scanner", "sipvicious", "sipcli", "VaxSIPUserAgent", "sip-scan", "sipsak",
        "iWar", "sundayddr", "SIVuS", "Gulp", "smap", "PortSIP VoIP SDK", "pplsip",
    ))

    def problems(self) -> list[str]:
        """What is wrong, each with its key; empty when the settings are usable."""
        found: list[str] = []
        for name in ("udp_port", "tcp_port", "tls_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                found.append(f"sip.{name}: expected 0 (off) or a port, got {port}")
        if not 1 <= self.rpc_port <= 65535:
            found.append(f"sip.rpc_port: expected a port, got {self.rpc_port}")
        if self.udp_port == 0 and self.tcp_port == 0 and self.tls_port == 0:
            found.append("sip: at least one of udp_port, tcp_port, tls_port must be set")
        found += _webrtc_problems(self)
        if self.rpc_port in (self.tcp_port, self.tls_port):
            found.append("sip.rpc_port: must differ from the SIP TCP/TLS ports")
        for name in ("listen_address", "worker_host"):
            if not _is_ip(getattr(self, name)):
                found.append(f"sip.{name}: expected an IP address, got {getattr(self, name)!r}")
        if self.advertised_address is not None and not _HOST_PORT_RE.fullmatch(
                self.advertised_address):
            found.append(f"sip.advertised_address: not a host name or address: "
                         f"{self.advertised_address!r}")
        for i, trunk in enumerate(self.trusted_trunks):
            if not _is_ip(trunk):
                found.append(f"sip.trusted_trunks[{i}]: expected an IP address, got {trunk!r}")
        if self.outbound_trunk is not None and not _HOST_PORT_RE.fullmatch(self.outbound_trunk):
            found.append(f"sip.outbound_trunk: expected host[:port], got {self.outbound_trunk!r}")
        found += _cluster_problems(self)
        if self.dispatch_algorithm not in DISPATCH_ALGORITHMS:
            found.append(f"sip.dispatch_algorithm: one of {', '.join(DISPATCH_ALGORITHMS)}, got "
                         f"{self.dispatch_algorithm!r}")
        if not 1 <= self.worker_count <= 1000:
            found.append(f"sip.worker_count: expected 1-1000, got {self.worker_count}")
        if not 1 <= self.worker_base_port <= 65535 - self.worker_count:
            found.append(f"sip.worker_base_port: out of range: {self.worker_base_port}")
        positive = ("worker_answer_timeout_ms", "worker_probe_interval_s", "max_message_bytes",
                    "flood_window_s", "flood_max_requests", "ban_seconds", "auth_failures_max",
                    "auth_failure_window_s", "children", "shm_mb", "pkg_mb", "min_expires_s")
        for name in positive:
            if getattr(self, name) <= 0:
                found.append(f"sip.{name}: expected a positive integer, got {getattr(self, name)}")
        if self.worker_max_calls < 0:
            found.append(f"sip.worker_max_calls: expected >= 0, got {self.worker_max_calls}")
        for i, agent in enumerate(self.scanner_user_agents):
            if not re.fullmatch(r"[A-Za-z0-9 ._-]+", agent):
                found.append(f"sip.scanner_user_agents[{i}]: letters, digits, space . _ - only")
        return found

    def check(self) -> "SipSettings":
        """Self, or SipSettingsError listing every problem."""
        found = self.problems()
        if found:
            raise SipSettingsError(found)
        return self

    def worker_ports(self) -> list[int]:
        return [self.worker_base_port + i for i in range(self.worker_count)]


def aligned_with_media(sip: SipSettings, media) -> SipSettings:
    """`sip` listing every port the media pool may use (`media`: callrouter.media's MediaSettings).

    The pool grows and shrinks between workers_min and workers_max; Kamailio lists all
    workers_max ports, starts them inactive, and its OPTIONS probes activate those that answer
    (at start, `callrouter serve` activates the ready ones at once: callrouter.sip.dispatch).
    """
    return replace(sip, worker_host=media.bind, worker_base_port=media.sip_port_base,
                   worker_count=media.workers_max)


def peer_address(entry: str) -> tuple[str, int]:
    """(address, port) of a `peer_edges` entry "192.0.2.12:5060" or "[2001:db8::12]:5060"."""
    host, _, port = entry.rpartition(":")
    return host.strip("[]"), int(port)


def _cluster_problems(sip: SipSettings) -> list[str]:
    found = []
    if sip.registrations not in REGISTRATIONS:
        found.append(f"sip.registrations: one of {', '.join(REGISTRATIONS)}, got {sip.registrations!r}")
    seen = set()
    for i, entry in enumerate(sip.peer_edges):
        try:
            address, port = peer_address(entry)
            ipaddress.ip_address(address)
            if not 1 <= port <= 65535:
                raise ValueError(port)
        except ValueError:
            found.append(f"sip.peer_edges[{i}]: expected address:port (an IP address and its UDP port), "
                         f"got {entry!r}")
            continue
        if address == sip.listen_address:
            found.append(f"sip.peer_edges[{i}]: {entry} is on this edge's address; list the other "
                         f"nodes' edges only, each on its own address")
        elif address in seen:
            found.append(f"sip.peer_edges[{i}]: a second edge on {address}; one edge per address")
        seen.add(address)
    if sip.peer_edges and sip.udp_port == 0:
        found.append("sip.peer_edges: the edges speak to each other over UDP; set sip.udp_port")
    return found


def _webrtc_problems(sip: SipSettings) -> list[str]:
    if sip.wss_port == 0:
        return []
    found = []
    if not 1 <= sip.wss_port <= 65535:
        found.append(f"sip.wss_port: expected 0 (off) or a port, got {sip.wss_port}")
    if sip.tls_port == 0:
        found.append("sip.wss_port: needs sip.tls_port (the WebSocket socket uses its certificate)")
    if sip.wss_port in (sip.tcp_port, sip.tls_port, sip.rpc_port):
        found.append("sip.wss_port: must differ from the SIP TCP/TLS and RPC ports")
    for i, origin in enumerate(sip.wss_origins):
        if origin != "*" and not _ORIGIN_RE.fullmatch(origin):
            found.append(f"sip.wss_origins[{i}]: expected scheme://host[:port] (e.g. https://console.example.fr), "
                         f"or *, got {origin!r}")
    if not 1 <= sip.rtpengine_ng_port <= 65535:
        found.append(f"sip.rtpengine_ng_port: expected a port, got {sip.rtpengine_ng_port}")
    if not 1024 <= sip.rtpengine_port_min < sip.rtpengine_port_max <= 65535:
        found.append(f"sip.rtpengine_port_min/max: expected 1024 <= min < max <= 65535, got "
                     f"{sip.rtpengine_port_min}-{sip.rtpengine_port_max}")
    return found


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
