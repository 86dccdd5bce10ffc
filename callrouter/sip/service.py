"""Kamailio as a child of the callrouter daemon: configured from our settings, restarted if it dies,
stopped with us, leaving no process behind.

Kamailio runs in the foreground (-DD) logging to stderr (-E), each line relayed to our log. It is
started through `setsid` so that it leads its own process group: stopping sends SIGTERM to the whole
group (main process and its forked workers), then SIGKILL after a grace period if any is left.
Under systemd, the unit's control group is the last safety net (see deploy/systemd/).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import time
from pathlib import Path

from twisted.application import service
from twisted.application.internet import backoffPolicy
from twisted.internet import defer, error
from twisted.internet.interfaces import IReactorProcess, IReactorTime
from twisted.python.failure import Failure

from callrouter.domain.masking import mask_numbers_in
from callrouter.sip import kamailio, webrtc
from callrouter.sip.rtpengine import RtpengineService
from callrouter.sip.process_lines import LineRelay
from callrouter.sip.settings import SipSettings

logger = logging.getLogger(__name__)

_LEVEL_RE = re.compile(r"\b(ALERT|CRITICAL|BUG|ERROR|WARNING|NOTICE|INFO|DEBUG):")
_LEVELS = {"ALERT": logging.ERROR, "CRITICAL": logging.ERROR, "BUG": logging.ERROR,
           "ERROR": logging.ERROR, "WARNING": logging.WARNING, "NOTICE": logging.INFO,
           "INFO": logging.DEBUG, "DEBUG": logging.DEBUG}


_BACKOFF = backoffPolicy(initialDelay=1.0, maxDelay=60.0, factor=2.0, jitter=lambda: 0.0)


def restart_delay(failures: int) -> float:
    """Seconds before restart after `failures` quick deaths in a row (1, 2, 4 ... 60): Twisted's
    backoff policy, without jitter (one process to restart, no herd to spread)."""
    return _BACKOFF(max(0, failures - 1))


# With shared registrations, usrloc says ERROR for every contact another edge received, skipped
# by design (skip_remote_socket): that is the normal case of several nodes, not an error.
_ROUTINE = ("db_load_urecord(): skipping record for",)


def _relay(raw: bytes) -> None:
    # Kamailio dumps the SIP messages it cannot parse, numbers included: mask them as we do ours.
    line = mask_numbers_in(raw.decode("utf-8", "replace").rstrip())
    if not line:
        return
    match = _LEVEL_RE.search(line)
    level = _LEVELS[match.group(1)] if match else logging.INFO
    if any(routine in line for routine in _ROUTINE):
        level = logging.DEBUG
    logger.log(level, "kamailio: %s", line)


class KamailioService(service.Service):
    """Writes the config into `config_dir` and supervises one Kamailio."""

    name = "kamailio"

    def __init__(self, sip: SipSettings, *, realm: str, database_url: str, config_dir: Path,
                 reactor: IReactorProcess | IReactorTime, base: Path | None = None,
                 stop_grace: float = 10.0, stable_after: float = 60.0) -> None:
        self.sip = sip.check()
        self._realm = realm
        self._database_url = database_url
        self._config_dir = Path(config_dir)
        self._reactor = reactor
        self._base = base
        self._stop_grace = stop_grace
        self._stable_after = stable_after
        self._process = None
        self._pid: int | None = None
        self._started_at = 0.0
        self._failures = 0
        self._restart_call = None
        self._stopping = False
        self._ended: defer.Deferred | None = None
        self.starts = 0
        self.files: kamailio.KamailioFiles | None = None
        # With WSS on, rtpengine for the browsers' media: started before Kamailio, stopped after.
        self.rtpengine = (RtpengineService(self.sip, kamailio.layout(self._config_dir, self.sip, base).runtime_dir,
                                           reactor) if webrtc.enabled(self.sip) else None)

    @property
    def pid(self) -> int | None:
        """The running Kamailio main process (also its process group), or None."""
        return self._pid

    def startService(self) -> None:
        super().startService()
        self._stopping = False
        self.files = kamailio.write_config(self._config_dir, self.sip, realm=self._realm,
                                           database_url=self._database_url, base=self._base)
        reap_stale(self.files.pid_file, self.files.config)
        if self.rtpengine is not None:
            self.rtpengine.startService()
        self._spawn()

    def _spawn(self) -> None:
        self._restart_call = None
        assert self.files is not None
        args = kamailio.command(self.sip, self.files)
        binary = shutil.which(args[0]) or args[0]
        setsid = shutil.which("setsid")
        argv = [setsid, binary, *args[1:]] if setsid else [binary, *args[1:]]
        self._ended = defer.Deferred()
        self._process = self._reactor.spawnProcess(
            LineRelay(_relay, self._process_ended), argv[0], argv,
            env={**os.environ, **kamailio.environment(self.sip, self._database_url)},
            path=str(self._base or Path.cwd()))
        self._pid = self._process.pid
        self._started_at = self._reactor.seconds()
        self.starts += 1
        logger.info("kamailio started (pid %s): %s", self._pid, " ".join(argv))

    def _process_ended(self, reason: Failure) -> None:
        pid, self._pid, self._process = self._pid, None, None
        if pid is not None:
            _kill_group(pid, signal.SIGKILL)  # workers whose main process died
        ended, self._ended = self._ended, None
        if self._stopping:
            logger.info("kamailio stopped")
        else:
            ran = self._reactor.seconds() - self._started_at
            self._failures = 1 if ran >= self._stable_after else self._failures + 1
            delay = restart_delay(self._failures)
            code = getattr(reason.value, "exitCode", None)
            logger.error("kamailio exited (code %s) after %.0f s; restarting in %.0f s", code, ran,
                         delay)
            self._restart_call = self._reactor.callLater(delay, self._spawn)
        if ended is not None:
            ended.callback(None)

    def stopService(self) -> defer.Deferred:
        super().stopService()
        self._stopping = True
        if self._restart_call is not None and self._restart_call.active():
            self._restart_call.cancel()
            self._restart_call = None
        if self.rtpengine is not None:
            return self._stop_kamailio().addBoth(lambda _: self.rtpengine.stopService())
        return self._stop_kamailio()

    def _stop_kamailio(self) -> defer.Deferred:
        if self._pid is None or self._ended is None:
            return defer.succeed(None)
        ended = self._ended
        _kill_group(self._pid, signal.SIGTERM)
        try:
            self._process.signalProcess("TERM")  # the same, when setsid was missing
        except error.ProcessExitedAlready:
            pass
        pid = self._pid
        timer = self._reactor.callLater(self._stop_grace, self._force_stop, pid)

        def done(result):
            if timer.active():
                timer.cancel()
            return result

        return ended.addBoth(done)

    def _force_stop(self, pid: int) -> None:
        logger.warning("kamailio still running %.0f s after SIGTERM: SIGKILL", self._stop_grace)
        _kill_group(pid, signal.SIGKILL)
        if self._process is not None:
            try:
                self._process.signalProcess("KILL")
            except error.ProcessExitedAlready:
                pass


def reap_stale(pid_file: Path, config: Path, grace: float = 5.0) -> int | None:
    """Stop a Kamailio left running by a previous run of ours that was killed outright (it leads its
    own process group, so it outlives us): it would hold the SIP ports. Only a process whose
    command line names our config file is touched. Returns its pid, or None."""
    try:
        pid = int(pid_file.read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if not argv or b"kamailio" not in Path(argv[0].decode(errors="replace")).name.encode() \
            or str(config).encode() not in argv:
        return None
    logger.warning("stopping a Kamailio left running by a previous run (pid %s)", pid)
    _kill_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    _kill_group(pid, signal.SIGKILL)
    return pid


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
