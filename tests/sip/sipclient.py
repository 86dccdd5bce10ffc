"""A tiny SIP user agent over UDP for the edge tests: exact control of what is sent, from which
loopback address, and of what comes back (status, headers), which SIPp makes awkward to compare."""

from __future__ import annotations

import hashlib
import random
import re
import socket
import time
from dataclasses import dataclass, field


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    raw: str

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def parse_response(data: bytes) -> Response | None:
    text = data.decode("utf-8", "replace")
    head = text.split("\r\n\r\n", 1)[0]
    lines = head.split("\r\n")
    match = re.match(r"SIP/2\.0 (\d{3}) ?(.*)", lines[0])
    if not match:
        return None
    headers = []
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers.append((key.strip(), value.strip()))
    return Response(int(match.group(1)), match.group(2), headers, text)


def digest(method: str, uri: str, user: str, realm: str, password: str, nonce: str) -> str:
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    return hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()


def challenge_params(value: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="?([^",]*)"?', value))


@dataclass
class SipClient:
    """One UDP socket on `bind_ip`; requests go to Kamailio at (host, port)."""

    server: tuple[str, int]
    bind_ip: str = "127.0.0.1"
    user_agent: str = "callrouter-test"
    via_transport: str = "UDP"
    bind_port: int = 0
    sock: socket.socket = field(init=False)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.bind_ip, self.bind_port))
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    def build(self, method: str, ruri: str, from_user: str, to_user: str, call_id: str, cseq: int,
              extra: list[str] = (), body: str = "", to_uri: str | None = None) -> bytes:
        host, port = self.server
        branch = "z9hG4bK" + "%016x" % random.getrandbits(64)
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/{self.via_transport} {self.bind_ip}:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{from_user}@{host}>;tag={call_id[:8]}",
            f"To: <{to_uri or f'sip:{to_user}@{host}'}>",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{from_user}@{self.bind_ip}:{self.port}>",
            f"User-Agent: {self.user_agent}",
            *extra,
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def final(self, timeout: float = 5.0) -> Response | None:
        """The next final (>= 200) response, or None if nothing final arrives in time."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except (socket.timeout, ConnectionRefusedError):
                continue
            response = parse_response(data)
            if response is not None and response.status >= 200:
                return response

    def request(self, method: str, ruri: str, from_user: str, to_user: str, *,
                password: str | None = None, auth_user: str | None = None,
                realm_hint: str | None = None, extra: list[str] = (), body: str = "",
                timeout: float = 5.0) -> Response | None:
        """Send; answer one digest challenge with `password` if given; the final response."""
        call_id = "%032x" % random.getrandbits(128)
        self.send(self.build(method, ruri, from_user, to_user, call_id, 1, extra, body))
        response = self.final(timeout)
        if response is None or response.status not in (401, 407) or password is None:
            self._ack_if_invite(method, ruri, from_user, to_user, call_id, response)
            return response
        self._ack_if_invite(method, ruri, from_user, to_user, call_id, response)
        name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        params = challenge_params(response.header(name) or "")
        user = auth_user or from_user
        realm = realm_hint or params["realm"]
        value = (f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}",'
                 f' uri="{ruri}", response="{digest(method, ruri, user, realm, password, params["nonce"])}",'
                 f' algorithm=MD5')
        auth_header = "Authorization" if response.status == 401 else "Proxy-Authorization"
        self.send(self.build(method, ruri, from_user, to_user, call_id, 2,
                             [*extra, f"{auth_header}: {value}"], body))
        response = self.final(timeout)
        self._ack_if_invite(method, ruri, from_user, to_user, call_id, response, cseq=2)
        return response

    def _ack_if_invite(self, method, ruri, from_user, to_user, call_id, response, cseq=1) -> None:
        if method != "INVITE" or response is None or response.status < 300:
            return
        to = response.header("To") or f"<sip:{to_user}@{self.server[0]}>"
        host, _ = self.server
        lines = [
            f"ACK {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.bind_ip}:{self.port};branch={self._last_branch(response)};rport",
            "Max-Forwards: 70",
            f"From: <sip:{from_user}@{host}>;tag={call_id[:8]}",
            f"To: {to}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} ACK",
            "Content-Length: 0",
        ]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    @staticmethod
    def _last_branch(response: Response) -> str:
        via = response.header("Via") or ""
        match = re.search(r"branch=([^;\s,]+)", via)
        return match.group(1) if match else "z9hG4bKx"

    def receive_request(self, method: str, timeout: float = 5.0) -> str | None:
        """The next `method` request that arrives (raw text), or None."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except (socket.timeout, ConnectionRefusedError):
                continue
            text = data.decode("utf-8", "replace")
            if text.startswith(f"{method} "):
                return text
        return None

    def reply(self, request: str, status: int, reason: str) -> None:
        """Answer `request` (sent to us through Kamailio) back along its Via path."""
        head = request.split("\r\n\r\n", 1)[0].split("\r\n")
        keep = [line for line in head[1:] if line.split(":", 1)[0].strip().lower() in
                ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq", "record-route")]
        keep = [line + ";tag=callee1" if line.lower().startswith(("to:", "t:")) and "tag=" not in line
                else line for line in keep]
        via = next(line for line in keep if line.lower().startswith(("via:", "v:")))
        match = re.search(r"SIP/2\.0/UDP ([^;:\s]+):(\d+)", via)
        text = "\r\n".join([f"SIP/2.0 {status} {reason}", *keep, "Content-Length: 0"]) + "\r\n\r\n"
        self.sock.sendto(text.encode(), (match.group(1), int(match.group(2))))

    def register(self, user: str, password: str | None, expires: int = 300, **kw) -> Response | None:
        host, _ = self.server
        return self.request("REGISTER", f"sip:{host}", user, user, password=password,
                            extra=[f"Expires: {expires}"], **kw)

    def options(self, timeout: float = 2.0) -> Response | None:
        host, port = self.server
        return self.request("OPTIONS", f"sip:{host}:{port}", "probe", "probe", timeout=timeout)


def tls_register(server: tuple[str, int], user: str, password: str,
                 bind_ip: str = "127.0.0.1") -> list[Response]:
    """REGISTER over one TLS connection (no certificate check: ours is self-signed); the answers."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    builder = SipClient(server, bind_ip=bind_ip, via_transport="TLS")
    builder.close()
    raw = socket.create_connection(server, timeout=10, source_address=(bind_ip, 0))
    answers: list[Response] = []
    with context.wrap_socket(raw) as tls:
        builder.port = tls.getsockname()[1]
        call_id = "%032x" % random.getrandbits(128)
        ruri = f"sip:{server[0]}"
        tls.sendall(builder.build("REGISTER", ruri, user, user, call_id, 1, ["Expires: 300"]))
        answers.append(_read_tls_response(tls))
        params = challenge_params(answers[0].header("WWW-Authenticate") or "")
        value = (f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}",'
                 f' uri="{ruri}", response="{digest("REGISTER", ruri, user, params["realm"], password, params["nonce"])}",'
                 f' algorithm=MD5')
        tls.sendall(builder.build("REGISTER", ruri, user, user, call_id, 2,
                                  ["Expires: 300", f"Authorization: {value}"]))
        answers.append(_read_tls_response(tls))
    return answers


def _read_tls_response(sock) -> Response:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65535)
        if not chunk:
            break
        data += chunk
    response = parse_response(data)
    assert response is not None, data
    return response


SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")
