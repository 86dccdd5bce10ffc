"""rtpengine as a child of the edge: started before Kamailio, stopped after it, restarted if it dies.

It bridges the console's WebRTC media (ICE, DTLS-SRTP, rtcp-mux: the browser) and the workers' plain
RTP/AVP G.711, in userspace only (`--table=-1`: no kernel module, nothing to load as root). Kamailio
drives it over the ng protocol on a loopback UDP port (callrouter.sip.webrtc); the RTP ports it
opens on `sip.listen_address` are `sip.rtpengine_port_min`..`max`. It reads no configuration file
(Debian's /etc/rtpengine is for its own unit, which scripts/ensure-system-deps disables), and runs
in its own process group so that stopping it leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import socket
import time
from pathlib import Path

from twisted.application import service
from twisted.internet import defer, error
from twisted.python.failure import Failure

from callrouter.sip.process_lines import LineRelay
from callrouter.sip.settings import SipSettings

logger = logging.getLogger(__name__)


def command(sip: SipSettings, pid_file: Path) -> list[str]:
    """rtpengine in the foreground, logging to stderr, userspace forwarding only."""
    return [sip.rtpengine_binary, "--config-file=none", "--foreground", "--log-stderr",
            "--no-log-timestamps", "--table=-1", f"--interface={sip.listen_address}",
            f"--listen-ng=127.0.0.1:{sip.rtpengine_ng_port}",
            f"--port-min={sip.rtpengine_port_min}", f"--port-max={sip.rtpengine_port_max}",
            "--num-threads=2", "--delete-delay=0", "--log-level=5", f"--pidfile={pid_file}"]


def _relay(line: bytes) -> None:
    text = line.decode("utf-8", "replace").rstrip()
    if text:  # call ids and addresses only: rtpengine logs no numbers at this level
        level = logging.WARNING if text.startswith(("ERR", "CRIT", "WARN")) else logging.INFO
        logger.log(level, "rtpengine: %s", text)


class RtpengineService(service.Service):
    """One supervised rtpengine (started by callrouter.sip.service.KamailioService with WSS on)."""

    name = "rtpengine"
    ready_timeout = 3.0

    def __init__(self, sip: SipSettings, runtime_dir: Path, reactor, *, stop_grace: float = 5.0,
                 restart_delay: float = 2.0) -> None:
        self.sip = sip
        self._runtime_dir = Path(runtime_dir)
        self._reactor = reactor
        self._stop_grace = stop_grace
        self._restart_delay = restart_delay
        self._process = None
        self._pid: int | None = None
        self._ended: defer.Deferred | None = None
        self._restart_call = None
        self._stopping = False
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self._pid

    def startService(self) -> None:
        """Started, and answering on its control port before Kamailio (started next) pings it:
        a few tens of milliseconds, at most `ready_timeout` s of waiting at start."""
        super().startService()
        self._stopping = False
        self._runtime_dir.mkdir(parents=True, exist_ok=True)
        self._spawn()
        deadline = time.monotonic() + self.ready_timeout
        while not answers_ping(self.sip.rtpengine_ng_port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _spawn(self) -> None:
        self._restart_call = None
        args = command(self.sip, self._runtime_dir / "rtpengine.pid")
        binary = shutil.which(args[0]) or args[0]
        setsid = shutil.which("setsid")
        argv = [setsid, binary, *args[1:]] if setsid else [binary, *args[1:]]
        self._ended = defer.Deferred()
        self._process = self._reactor.spawnProcess(LineRelay(_relay, self._process_ended), argv[0], argv,
                                                   env=os.environ.copy())
        self._pid = self._process.pid
        self.starts += 1
        logger.info("rtpengine started (pid %s): %s", self._pid, " ".join(argv))

    def _process_ended(self, reason: Failure) -> None:
        pid, self._pid, self._process = self._pid, None, None
        if pid is not None:
            _kill_group(pid, signal.SIGKILL)
        ended, self._ended = self._ended, None
        if self._stopping:
            logger.info("rtpengine stopped")
        else:
            logger.error("rtpengine exited (code %s); restarting in %.0f s",
                         getattr(reason.value, "exitCode", None), self._restart_delay)
            self._restart_call = self._reactor.callLater(self._restart_delay, self._spawn)
        if ended is not None:
            ended.callback(None)

    def stopService(self) -> defer.Deferred:
        super().stopService()
        self._stopping = True
        if self._restart_call is not None and self._restart_call.active():
            self._restart_call.cancel()
        if self._pid is None or self._ended is None:
            return defer.succeed(None)
        ended, pid = self._ended, self._pid
        _kill_group(pid, signal.SIGTERM)
        try:
            self._process.signalProcess("TERM")
        except error.ProcessExitedAlready:
            pass
        timer = self._reactor.callLater(self._stop_grace, _kill_group, pid, signal.SIGKILL)

        def done(result):
            if timer.active():
                timer.cancel()
            return result

        return ended.addBoth(done)


def answers_ping(port: int, timeout: float = 0.2) -> bool:
    """rtpengine answers the ng protocol's `ping` with `pong` on 127.0.0.1:`port`."""
    cookie = "%08x" % random.getrandbits(32)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(f"{cookie} d7:command4:pinge".encode(), ("127.0.0.1", port))
            data, _ = s.recvfrom(4096)
        except OSError:  # refused (nothing there yet) or timed out
            return False
    return data.startswith(cookie.encode()) and b"pong" in data


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
