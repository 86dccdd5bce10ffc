"""SIP over secure WebSocket (RFC 7118) as a browser speaks it: one TLS connection, the HTTP upgrade
with the `sip` sub-protocol, then one SIP message per masked text frame. No certificate check: the
edge's is self-signed."""

from __future__ import annotations

import base64
import os
import random
import socket
import ssl
import struct

from tests.sip.sipclient import Response, challenge_params, digest, parse_response


class Refused(Exception):
    """The server did not upgrade the connection (its HTTP status line in the message)."""


class WsSipClient:
    def __init__(self, server: tuple[str, int], bind_ip: str = "127.0.0.1",
                 user_agent: str = "callrouter-ws-test", timeout: float = 10.0,
                 origin: str | None = "") -> None:
        """`origin`: the handshake's Origin header ("": the page https://<server address>, as the
        console's; None: no Origin, as a client that is not a browser)."""
        self.server = server
        self.user_agent = user_agent
        self.origin = f"https://{server[0]}" if origin == "" else origin
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(server, timeout=timeout, source_address=(bind_ip, 0))
        self.sock = context.wrap_socket(raw)
        self.local = self.sock.getsockname()
        self.contact_host = "%08x.invalid" % random.getrandbits(32)
        self._buffer = b""
        self._handshake()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _handshake(self) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        host, port = self.server
        self.sock.sendall((
            f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: sip\r\n" + (f"Origin: {self.origin}\r\n" if self.origin else "")
            + "\r\n").encode())
        while b"\r\n\r\n" not in self._buffer:
            chunk = self.sock.recv(65535)
            if not chunk:
                raise Refused("connection closed during the handshake")
            self._buffer += chunk
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 101 " not in status + " ":
            raise Refused(status)

    def send_text(self, text: str) -> None:
        payload = text.encode()
        header = bytes([0x81])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.sock.recv(65535)
            if not chunk:
                raise ConnectionError("closed")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def receive_text(self, timeout: float = 5.0) -> str | None:
        """The next text frame (pings answered on the way), or None on timeout or close."""
        self.sock.settimeout(timeout)
        try:
            while True:
                b0, b1 = self._read(2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", self._read(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", self._read(8))[0]
                payload = self._read(n)
                opcode = b0 & 0x0F
                if opcode == 0x9:  # ping: pong
                    self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
                elif opcode == 0x8:
                    return None
                elif opcode == 0x1:
                    return payload.decode(errors="replace")
        except (socket.timeout, ConnectionError, OSError, ValueError):
            return None

    def build(self, method: str, ruri: str, user: str, call_id: str, cseq: int,
              extra: list[str] = ()) -> str:
        host = self.server[0]
        branch = "z9hG4bK" + "%016x" % random.getrandbits(64)
        return "\r\n".join([
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/WSS {self.contact_host};branch={branch}",
            "Max-Forwards: 70",
            f"From: <sip:{user}@{host}>;tag={call_id[:8]}",
            f"To: <sip:{user}@{host}>",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{user}@{self.contact_host};transport=ws>",
            f"User-Agent: {self.user_agent}",
            *extra,
            "Content-Length: 0", "", ""])

    def final(self, timeout: float = 5.0) -> Response | None:
        while True:
            text = self.receive_text(timeout)
            if text is None:
                return None
            response = parse_response(text.encode())
            if response is not None and response.status >= 200:
                return response

    def register(self, user: str, password: str, expires: int = 300,
                 timeout: float = 5.0) -> Response | None:
        """REGISTER, answering one challenge with `password`; the final answer (None: silence)."""
        call_id = "%032x" % random.getrandbits(128)
        ruri = f"sip:{self.server[0]}"
        self.send_text(self.build("REGISTER", ruri, user, call_id, 1, [f"Expires: {expires}"]))
        response = self.final(timeout)
        if response is None or response.status != 401:
            return response
        params = challenge_params(response.header("WWW-Authenticate") or "")
        value = (f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}",'
                 f' uri="{ruri}", response="{digest("REGISTER", ruri, user, params["realm"], password, params["nonce"])}",'
                 f' algorithm=MD5')
        self.send_text(self.build("REGISTER", ruri, user, call_id, 2,
                                  [f"Expires: {expires}", f"Authorization: {value}"]))
        return self.final(timeout)

    def options(self, timeout: float = 2.0) -> Response | None:
        call_id = "%032x" % random.getrandbits(128)
        self.send_text(self.build("OPTIONS", f"sip:{self.server[0]}", "probe", call_id, 1))
        return self.final(timeout)
