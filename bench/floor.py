"""The floor of this machine: a plain stateful Kamailio relay in front of a SIPp phone that answers
at once. The same callers through it and through callrouter's edge, in the same run, say what the
media plane adds on top of relaying SIP.

The relay runs as callrouter's edge does (`-x fm`, the same number of children, the same memory),
with nothing but Max-Forwards, Record-Route and t_relay() to one destination.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from callrouter.devtools.serve import free_udp_port

CONFIG = """#!KAMAILIO
debug=1
log_stderror=yes
children={children}
auto_aliases=no
listen=udp:127.0.0.1:{port}
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "textopsx.so"
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK") && t_check_trans()) {{ t_relay(); }}
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    t_check_trans();
    if (is_method("INVITE")) {{ record_route(); }}
    $du = "sip:127.0.0.1:{target}";
    t_relay();
}}
"""


class RelayFloor:
    """A Kamailio relaying everything it gets on `port` to 127.0.0.1:`target`."""

    def __init__(self, directory: Path, target: int, children: int = 4) -> None:
        self.directory, self.target, self.children = directory, target, children
        self.port = free_udp_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RelayFloor":
        cfg = self.directory / "floor.cfg"
        cfg.write_text(CONFIG.format(children=self.children, port=self.port, target=self.target))
        run = self.directory / "floor-run"
        run.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            ["kamailio", "-DD", "-E", "-f", str(cfg), "-P", str(run / "kamailio.pid"), "-Y", str(run),
             "-m", "64", "-M", "8", "-x", "fm"],
            stdout=subprocess.DEVNULL, stderr=(self.directory / "floor.log").open("wb"), start_new_session=True)
        time.sleep(1.0)
        if self.proc.poll() is not None:
            raise RuntimeError("the relay floor's Kamailio did not start:\n"
                               + (self.directory / "floor.log").read_text(errors="replace")[-2000:])
        return self

    def pids(self) -> list[int]:
        if self.proc is None:
            return []
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
        return [int(p) for p in out] or [self.proc.pid]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
