"""A real `callrouter serve` for the API's tests over the network: one media worker, no SIP edge,
no MQTT, a test practice; users added with the CLI against the running service's database."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

from callrouter.auth.totp import code_at
from callrouter.devtools.serve import CLI, ServeProcess, base_config
from tests.app.conftest import DIALPLAN, NUMBER
from tests.factories import REPO

PASSWORD = "a long enough password"


def api_service(root: Path, http: dict | None = None) -> ServeProcess:
    """Built, not started: the admin API of a service of its own on free loopback ports."""
    (root / "dialplans").mkdir(exist_ok=True)
    (root / "dialplans" / "e2e.yaml").write_text(DIALPLAN.format(number=NUMBER))
    config = base_config(root, root / "dialplans", REPO / "prompts", workers=1)
    config["http"].update(http or {})
    config["mqtt"] = {"enabled": False}
    return ServeProcess(root, config)


def add_user(svc: ServeProcess, username: str, role: str = "administrator", *practices: str) -> str:
    """Create a user with the CLI (as an operator does, beside the running service); her TOTP secret."""
    args = [CLI, "users", "add", username, "--role", role, "--password-stdin",
            "--config", str(svc.root / "callrouter.yaml")]
    for practice in practices:
        args += ["--practice", practice]
    out = subprocess.run(args, cwd=svc.root, input=PASSWORD + "\n", capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return re.search(r"TOTP secret \(shown once\): (\w+)", out).group(1)


def totp_now(secret: str) -> str:
    return code_at(secret, dt.datetime.now(dt.timezone.utc))
