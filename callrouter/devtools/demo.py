"""`make demo`: a scripted patient calls a practice through a service of its own (edge, workers,
controller), picks "appointment" in the menu, waits on hold, is answered by a simulated secretary;
then the call record the service wrote is printed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from callrouter.devtools import sipp as scen
from callrouter.devtools.serve import ServeProcess, base_config, edge_config, free_udp_port

REPO = Path(__file__).resolve().parents[2]
NUMBER = "+33100000099"
DIALPLAN = f"""\
practice: cabinet-demo
name: Cabinet de démonstration
timezone: Europe/Paris
numbers: ["{NUMBER}"]
hours:
  daily: ["00:00-24:00"]
queues:
  general: {{label: Secrétariat, wrap_up: 5s}}
ivr:
  triage:
    prompt: triage_menu
    timeout: 6s
    on_timeout: {{queue: general}}
    options:
      "1": {{reason: urgence vitale, tier: vital}}
      "2": {{reason: urgence, queue: general}}
      "3": {{reason: rendez-vous, queue: general}}
      "4": {{reason: résultats, queue: general}}
routes:
  open: {{announce: welcome, then: {{ivr: triage}}}}
  closed: {{ivr: triage}}
  holiday: {{ivr: triage}}
escalation:
  tiers:
    vital:
      announce: call_15
      steps:
        - {{sms: dr-demo}}
practitioners:
  - {{id: dr-demo, name: Dr Démo, phone: "+33600000009"}}
"""


def _sipp(scenario: Path, workdir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-m", "1", "-nostdin",
                             "-timeout", "90s", "-timeout_error", "-trace_err", "-s", NUMBER, *args],
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> int:
    if shutil.which("sipp") is None:
        print("sipp is missing: run `make demo` (it installs Debian's sip-tester)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="callrouter-demo-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "dialplans").mkdir()
        (tmp / "dialplans" / "demo.yaml").write_text(DIALPLAN)
        secretary_port = free_udp_port()
        config = base_config(tmp, tmp / "dialplans", REPO / "prompts", workers=2,
                             agents={"*": [f"sip:secretaire-demo@127.0.0.1:{secretary_port}"]}, sip=edge_config(tmp))
        print("starting a service of its own (Kamailio edge, 2 media workers, controller)...")
        svc = ServeProcess(tmp, config).start()
        try:
            svc.wait_edge_ready(2)
            edge = svc.config["sip"]["udp_port"]
            print(f"a patient calls {NUMBER} through the edge (127.0.0.1:{edge}), hears the welcome and the menu,")
            print("presses 3 (appointment), waits on hold; the secretary answers and hangs up after 4 s")
            secretary = _sipp(scen.secretary(tmp, "secretary", "cabinet-demo", answer_after_ms=1500, hangup_after_ms=4000),
                              tmp, "-p", str(secretary_port), "-set", "rtp_port", str(free_udp_port(even=True)))
            caller = _sipp(scen.caller(tmp, "patient", [("pause", 4000), ("digit", "3")], end="wait_bye"), tmp,
                           "-set", "rtp_port", str(free_udp_port(even=True)), "-set", "caller", "+33612345678",
                           f"127.0.0.1:{edge}")
            ok = caller.wait(120) == 0 and secretary.wait(120) == 0
            if not ok:
                print("the scripted call failed:", (caller.stderr.read() + secretary.stderr.read()).decode()[-2000:])
                return 1
            [record] = svc.calls(wait_closed=1)
            print("\nthe call record the service wrote:")
            print(json.dumps(_record(record), indent=2, ensure_ascii=False))
            return 0
        finally:
            svc.stop()


def _record(r) -> dict:
    from callrouter.domain.call import mask_number

    iso = lambda t: t.isoformat() if t else None  # noqa: E731
    return {
        "call_id": r.id, "practice": r.practice, "number_dialled": r.number, "caller": mask_number(r.caller),
        "worker": r.worker, "route": r.route, "reason": r.reason,
        "ivr_answers": [{"menu": a.menu, "digit": a.digit} for a in r.ivr_answers],
        "arrived": iso(r.arrived_at), "queued": iso(r.queued_at), "offered": iso(r.offered_at),
        "answered": iso(r.answered_at), "ended": iso(r.ended_at), "queue_wait_seconds": r.queue_wait_seconds,
        "secretary": r.secretary, "outcome": r.outcome, "cause": r.cause,
        "legs": [{"kind": leg.kind, "started": iso(leg.started_at), "ended": iso(leg.ended_at)} for leg in r.legs],
    }


if __name__ == "__main__":
    sys.exit(main())
