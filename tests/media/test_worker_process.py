"""The worker as a process, without calls: start-up failures are explicit and quick."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.media.harness import REPO


def test_a_busy_sip_port_makes_the_worker_exit_2_with_the_reason():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "callrouter.media.worker", "--sip-port", str(port)],
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=60, cwd=REPO)
    assert done.returncode == 2
    assert done.stdout == b""                      # no ready event: the pool will retry later
    assert b"cannot start" in done.stderr and b"Address already in use" in done.stderr


def test_bad_arguments_are_refused():
    done = subprocess.run([sys.executable, "-m", "callrouter.media.worker"], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=60, cwd=REPO)
    assert done.returncode == 2 and b"--sip-port" in done.stderr
