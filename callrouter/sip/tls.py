"""A self-signed certificate for Kamailio's TLS socket, made with openssl when none exists.

Softphones accept it after the usual fingerprint prompt; a production host would rather drop a
certificate from a real CA at the same paths (kamailio.crt / kamailio.key), which is then kept.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)

CERT_NAME = "kamailio.crt"
KEY_NAME = "kamailio.key"


def ensure_certificate(directory: Path, common_name: str = "callrouter",
                       days: int = 3650) -> tuple[Path, Path]:
    """(certificate, key) in `directory`, made now if either is missing."""
    cert, key = directory / CERT_NAME, directory / KEY_NAME
    if cert.exists() and key.exists():
        return cert, key
    if not re.fullmatch(r"[A-Za-z0-9._-]+", common_name):
        raise ValueError(f"common name {common_name!r}: letters, digits, . _ - only")
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is needed to make the TLS certificate (Debian package openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", str(days),
         "-subj", f"/CN={common_name}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)
    key.chmod(0o600)
    logger.info("made a self-signed TLS certificate for %s in %s", common_name, directory)
    return cert, key
