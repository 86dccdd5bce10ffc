"""The admin API and the console behind TLS when `http.tls_cert`/`http.tls_key` are set: a real
`callrouter serve` answering a real TLS client on loopback, with Strict-Transport-Security, a
Secure session cookie, and nothing for a client speaking plain HTTP or not trusting the CA."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess

import pytest

from callrouter.devtools.certs import TestAuthority
from callrouter.devtools.serve import CLI
from tests.app.conftest import prompts_built  # noqa: F401 - the session fixture building the prompts
from tests.web.serve_support import PASSWORD, add_user, api_service, totp_now

pytestmark = pytest.mark.integration
HSTS = "max-age=31536000"


@pytest.fixture(scope="module")
def https(tmp_path_factory, prompts_built):  # noqa: F811
    root = tmp_path_factory.mktemp("https")
    ca = TestAuthority(root / "tls")
    server = ca.server("api")
    svc = api_service(root, {"tls_cert": str(server.cert), "tls_key": str(server.key)}).start()
    try:
        yield svc, ca
    finally:
        assert not svc.stop(), "processes left running"


def request(svc, ca, method, path, body=None, headers=None):
    context = ssl.create_default_context(cafile=str(ca.ca))  # verifies the chain and 127.0.0.1
    conn = http.client.HTTPSConnection("127.0.0.1", svc.config["http"]["port"], context=context, timeout=20)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(), conn.sock.version()
    finally:
        conn.close()


def test_the_console_is_served_over_tls_with_hsts(https):
    svc, ca = https
    status, headers, body, version = request(svc, ca, "GET", "/console/connexion")
    assert status == 200 and b"<html" in body.lower()
    assert version in ("TLSv1.2", "TLSv1.3")
    assert headers["strict-transport-security"] == HSTS
    status, headers, _, _ = request(svc, ca, "GET", "/console")
    assert status == 302 and headers["strict-transport-security"] == HSTS


def test_the_api_signs_in_over_tls_and_the_session_cookie_is_secure(https):
    svc, ca = https
    secret = add_user(svc, "tls-admin")
    status, headers, body, _ = request(svc, ca, "POST", "/api/login",
                                       {"username": "tls-admin", "password": PASSWORD, "totp": totp_now(secret)})
    assert status == 200, body
    token = json.loads(body)["token"]
    status, headers, body, _ = request(svc, ca, "GET", "/api/me", headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and json.loads(body)["username"] == "tls-admin"
    assert headers["strict-transport-security"] == HSTS
    other = add_user(svc, "tls-super", "supervisor")
    status, headers, body, _ = request(svc, ca, "POST", "/api/session", {"username": "tls-super", "password": PASSWORD,
                                                                         "totp": totp_now(other)})
    assert status == 200, body
    cookie = headers["set-cookie"]
    assert "callrouter_console=" in cookie and "Secure" in cookie and "HttpOnly" in cookie


def test_a_client_speaking_plain_http_gets_no_answer(https):
    svc, _ = https
    conn = http.client.HTTPConnection("127.0.0.1", svc.config["http"]["port"], timeout=10)
    with pytest.raises((http.client.RemoteDisconnected, http.client.BadStatusLine, ConnectionResetError)):
        conn.request("GET", "/console/connexion")
        conn.getresponse()
    conn.close()


def test_a_client_not_trusting_the_ca_refuses_the_server(https):
    svc, _ = https
    conn = http.client.HTTPSConnection("127.0.0.1", svc.config["http"]["port"],
                                       context=ssl.create_default_context(), timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("GET", "/console/connexion")
    conn.close()


def test_a_key_that_is_not_the_certificates_stops_the_start_with_the_reason(tmp_path, prompts_built):  # noqa: F811
    ca = TestAuthority(tmp_path / "tls")
    one, other = ca.server("one"), ca.server("other")
    svc = api_service(tmp_path, {"tls_cert": str(one.cert), "tls_key": str(other.key)})
    path = tmp_path / "callrouter.yaml"
    path.write_text(json.dumps(svc.config))
    subprocess.run([CLI, "db", "upgrade", "--config", str(path)], cwd=tmp_path, check=True, capture_output=True)
    serve = subprocess.run([CLI, "serve", "--config", str(path)], cwd=tmp_path, capture_output=True, text=True,
                           timeout=60)
    assert serve.returncode == 1
    assert f"the key in {other.key} does not match the certificate in {one.cert}" in serve.stderr
