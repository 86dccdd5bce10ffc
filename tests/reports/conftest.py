"""Fixtures of the report tests: fresh databases (SQLite and the real PostgreSQL), cheap password
hashing, and a real SMTP server with STARTTLS on loopback (aiosmtpd, a certificate made here)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess

import pytest
from aiosmtpd.controller import Controller


class Mailbox:
    """What the SMTP server received; `hold_s` delays the answer to DATA (a slow relay)."""

    def __init__(self):
        self.envelopes = []
        self.receiving = 0  # messages whose DATA arrived, answered or not yet
        self.hold_s = 0.0
        self.port = self.cert = None

    async def handle_DATA(self, server, session, envelope):
        self.receiving += 1
        if self.hold_s:
            await asyncio.sleep(self.hold_s)
        self.envelopes.append(envelope)
        return "250 OK: queued"


def certificate(tmp_path):
    cert, key = tmp_path / "smtp-cert.pem", tmp_path / "smtp-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_smtp(tmp_path, port: int | None = None, hold_s: float = 0.0):
    """A real SMTP server requiring STARTTLS on 127.0.0.1: (mailbox, controller to stop)."""
    cert, key = certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()
    mailbox.port, mailbox.cert, mailbox.hold_s = port or free_port(), cert, hold_s
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port, tls_context=context,
                            require_starttls=True, ready_timeout=10)
    controller.start()
    return mailbox, controller


@pytest.fixture
def smtp_server(tmp_path):
    mailbox, controller = start_smtp(tmp_path)
    yield mailbox
    controller.stop()
