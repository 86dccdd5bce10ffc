"""The admin API and console over HTTPS: a Twisted SSL endpoint from the configured PEM files.

`http.tls_cert` holds the server's certificate first, then any intermediate certificates;
`http.tls_key` its private key (unencrypted: the service starts unattended, so keep the file
mode 0600 and owned by the service's user). TLS 1.2 is the minimum; Twisted's defaults choose
the ciphers (forward secrecy only). Files are read once at start: a renewed certificate needs a
restart.
"""

from __future__ import annotations

import re
from pathlib import Path
from OpenSSL import crypto
from twisted.application.internet import SSLServer
from twisted.internet import ssl
from twisted.web.server import Site

PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\s*", re.S)


class TlsFilesError(Exception):
    """A certificate or key file that cannot be used; says which and why."""


def certificate_options(cert_file: Path, key_file: Path) -> ssl.CertificateOptions:
    try:
        chain_pem = cert_file.read_bytes()
        key_pem = key_file.read_bytes()
    except OSError as exc:
        raise TlsFilesError(f"cannot read {exc.filename}: {exc.strerror}") from None
    blocks = PEM_CERT.findall(chain_pem)
    if not blocks:
        raise TlsFilesError(f"{cert_file} holds no PEM certificate")
    try:
        chain = [crypto.load_certificate(crypto.FILETYPE_PEM, b) for b in blocks]
        key = crypto.load_privatekey(crypto.FILETYPE_PEM, key_pem)
    except crypto.Error as exc:
        raise TlsFilesError(f"{cert_file} or {key_file} is not valid PEM: {exc}") from None
    options = ssl.CertificateOptions(privateKey=key, certificate=chain[0], extraCertChain=chain[1:],
                                     raiseMinimumTo=ssl.TLSVersion.TLSv1_2)
    try:
        options.getContext()  # made now, so a key that is not the certificate's fails the start
    except Exception as exc:  # OpenSSL.SSL.Error from check_privatekey
        raise TlsFilesError(f"the key in {key_file} does not match the certificate in {cert_file}: {exc}") from None
    return options


def https_service(port: int, host: str, site: Site, cert_file: Path, key_file: Path) -> SSLServer:
    """Serve `site` over TLS only on host:port (a port already taken fails the start, as for
    plain HTTP)."""
    return SSLServer(port, site, certificate_options(cert_file, key_file), interface=host)
