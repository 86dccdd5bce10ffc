"""Debian's sipvicious (svmap, svwar, svcrack) against one real `callrouter serve` on loopback, as
it comes ("friendly-scanner") and disguised as a softphone: it finds nothing useful, learns none
of the real user names, cracks no password even with the right one in its dictionary, and ends on
the edge's ban list; patients' calls go on meanwhile.

sipvicious 0.3.3 sends from 127.0.0.1 whatever its -b says, so the trunk of this service is
127.0.0.5 and the scanner is the outsider at 127.0.0.1.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from callrouter.devtools.sipfuzz_service import NUMBER, ServiceChecks
from callrouter.devtools.sipwire import Peer, answers_options
from tests.app.acd_support import SIP_PASSWORD, add_secretaries
from tests.hostile.conftest import hostile_service

pytestmark = pytest.mark.integration

TRUNK = "127.0.0.5"
SCANNER = "127.0.0.1"
USERS = ("alice", "bernadette", "101", "secretariat")
DISGUISE = "Zoiper rv2.10.8.3"
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def service(tmp_path_factory, prompts_built):
    """The service, with the real users, and its processes and free call slots before any scan."""
    if shutil.which("svwar") is None:
        pytest.skip("sipvicious is needed (scripts/ensure-system-deps)")
    root = tmp_path_factory.mktemp("sipvicious")
    with hostile_service(root, TRUNK) as svc:
        add_secretaries(svc.db_url, {user: "essai-fuzz" for user in USERS})
        yield svc, ServiceChecks(svc, NUMBER, root / "calls", trunk_ip=TRUNK)


@pytest.fixture
def served(service):
    return service[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dictionaries")
    names = root / "names.txt"
    names.write_text("\n".join(["admin", "100", *USERS, "secretaire", "docteur", "200"]) + "\n")
    passwords = root / "passwords.txt"  # the real one after more wrong ones than the edge allows
    passwords.write_text("\n".join([*(f"motdepasse{i}" for i in range(1, 10)), SIP_PASSWORD]) + "\n")
    return {"names": names, "passwords": passwords}


def sipvicious(tool: str, *args: str, disguise: str | None = None, cwd: Path) -> str:
    """One run of a sipvicious tool (disguised with another User-Agent if asked): its output."""
    command = [tool, *args] if disguise is None else \
        ["/usr/bin/python3", str(HERE / "disguised_sipvicious.py"), disguise, tool, *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=90)
    return done.stdout + done.stderr


def bans(svc) -> set[str]:
    return {entry["name"] for table in svc.kamailio_rpc("htable.dump", "ipban") or [] for entry in table["slot"]}


def unban_all(svc) -> None:
    for key in bans(svc):
        svc.kamailio_rpc("htable.delete", "ipban", key)
    assert bans(svc) == set()


def port(svc) -> str:
    return str(svc.config["sip"]["udp_port"])


def learned_nothing(output: str) -> bool:
    """sipvicious's own verdict, and none of the real names or the password in what it printed."""
    return "found nothing" in output and not any(f"| {user} " in output for user in USERS) \
        and SIP_PASSWORD not in output


def test_the_stock_tools_get_silence_and_the_scanner_is_banned(served, files, tmp_path):
    unban_all(served)
    found = sipvicious("svmap", "-p", port(served), SCANNER, cwd=tmp_path)
    assert "found nothing" in found and "callrouter" not in found, found
    found = sipvicious("svwar", "-p", port(served), "-d", str(files["names"]), SCANNER, cwd=tmp_path)
    assert learned_nothing(found), found
    found = sipvicious("svcrack", "-u", "alice", "-d", str(files["passwords"]), "-p", port(served),
                       "--maximumtime", "3", SCANNER, cwd=tmp_path)
    assert learned_nothing(found), found
    banned = bans(served)
    assert banned and all(key.startswith(f"{SCANNER}:") for key in banned), banned  # its socket
    assert "scanner user agent from 127.0.0.1:" in served.log_text()


def test_disguised_as_a_softphone_it_learns_no_user_and_cracks_nothing(served, files, tmp_path):
    unban_all(served)
    # Every name, real or not, gets the same challenge: nothing tells a user exists.
    for method in ("REGISTER", "INVITE"):
        found = sipvicious("svwar", "--force", "-m", method, "-p", port(served), "-d", str(files["names"]),
                           "--maximumtime", "3", SCANNER, disguise=DISGUISE, cwd=tmp_path)
        assert learned_nothing(found), (method, found)
    # The password is tenth in its list: the address is banned after the fifth failure.
    unban_all(served)
    found = sipvicious("svcrack", "-u", "alice", "-d", str(files["passwords"]), "-p", port(served),
                       "--maximumtime", "3", SCANNER, disguise=DISGUISE, cwd=tmp_path)
    assert learned_nothing(found), found
    assert SCANNER in bans(served)
    assert f"{SCANNER} banned for 300 s after 5 failed authentications" in served.log_text()
    # Banned: whatever it sends now gets silence, from any port; everyone else is answered.
    assert not answers_options(Peer("127.0.0.1", int(port(served)), source=SCANNER), timeout=1.5)
    assert answers_options(Peer("127.0.0.1", int(port(served)), source="127.0.0.77"))


def test_patients_calls_and_the_workers_are_untouched_by_the_scans(service):
    """Same processes and free call slots as before the scans, and a patient's call answered."""
    _, checks = service
    assert checks() == {"crash": [], "hang": [], "slots": [], "call": []}
