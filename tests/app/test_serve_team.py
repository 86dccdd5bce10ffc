"""The team edited live on the whole service behind the real Kamailio edge, without a restart, and
still the edited one after a restart.

`callrouter serve` runs with its edge and two pjsua2 workers; the settings' `controller.secretaries`
seed the team in the database at the first start. A supervisor (a user signed in with password and
TOTP) moves a practice's coverage through `PUT /api/team/secretaries/{secretary}`: the next SIPp
patient of that practice rings the newly covering secretary's SIPp softphone, never the one who
covered it before. The state history lists the changes with who made them. After the service
restarts (the settings unchanged: they still name the old coverage), the team is the database's.
One service is shared by the module; each test has practices of its own.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.app.acd_support import add_supervisor, Practice, running_acd, secretary_legs
from tests.sip.harness import wait_for

pytestmark = pytest.mark.integration

PRACTICES = [
    Practice("team-move", "+33100000301", ("ana",)),
    Practice("team-other", "+33100000302", ("bea",)),
    Practice("team-kept", "+33100000303", ("cleo",)),
    Practice("team-spare", "+33100000304", ("dina",)),
]
SUPERVISOR = "superviseur"


@pytest.fixture(scope="module")
def acd(tmp_path_factory, prompts_built):
    with running_acd(tmp_path_factory.mktemp("team"), PRACTICES) as acd:
        acd.totp_secrets[SUPERVISOR] = add_supervisor(acd, SUPERVISOR, "Sophie Superviseure")
        acd.token = acd.sign_in(SUPERVISOR)
        yield acd


@pytest.fixture
def service(acd):
    try:
        yield acd
    finally:
        acd.kill_started()



def member(team: dict, who: str) -> dict:
    return next(s for s in team["secretaries"] if s["id"] == who)


def history_of(acd, who: str, until, timeout: float = 10) -> list[dict]:
    """Her state history through the API, once `until` holds (rows are written a moment after)."""
    def read():
        status, body = acd.api("GET", f"/api/secretaries/history?secretary={who}", acd.token)
        assert status == 200, body
        return body["changes"] if until(body["changes"]) else None

    changes = wait_for(read, timeout=timeout, interval=0.2)
    assert changes is not None, acd.api("GET", f"/api/secretaries/history?secretary={who}", acd.token)
    return changes


def test_a_coverage_moved_by_a_supervisor_sends_the_next_call_to_the_new_secretary(service):
    """ana covers team-move in the settings; the supervisor gives it to bea (keeping team-other)
    and takes it from ana: the next patient of team-move rings bea's softphone, ana's never rings.
    The history shows the pause the supervisor forced on ana, with her name, and the registrations
    the system saw; the team change is audited with her name."""
    acd = service
    status, team = acd.api("GET", "/api/team", acd.token)
    assert status == 200, team
    assert member(team, "ana")["coverage"] == ["team-move/*"] and member(team, "bea")["coverage"] == ["team-other/*"]
    ana, bea = acd.softphone("ana"), acd.softphone("bea")
    ana.register()
    bea.register()
    acd.wait_registered()
    ana.take([("answer", 300, 1000)])
    bea.take([("answer", 300, 1000)])

    status, entry = acd.api("PUT", "/api/team/secretaries/bea", acd.token,
                            {"coverage": ["team-move/*", "team-other/*"], "levels": {"team-move": 2}})
    assert status == 200, entry
    assert entry["practices"] == ["team-move", "team-other"] and entry["phone"] == acd.uri("bea")
    status, entry = acd.api("PUT", "/api/team/secretaries/ana", acd.token, {"coverage": [], "levels": {}})
    assert status == 200 and entry["practices"] == [], entry

    acd.patient("team-move", "+33621000001")
    record = acd.record("+33621000001")
    assert record.outcome == "answered" and record.secretary == acd.uri("bea")
    assert [leg.party for leg in secretary_legs(record)] == [acd.uri("bea")]
    bea.finish()
    assert bea.offers() == [record.id] and ana.offers() == []

    status, refused = acd.api("POST", "/api/secretaries/ana/pause", acd.token, {"reason": "sieste"})
    assert status == 422 and "réunion" in refused["reasons"], refused
    status, paused = acd.api("POST", "/api/secretaries/ana/pause", acd.token, {"reason": "réunion"})
    assert status == 200 and paused["state"] == "paused"
    changes = history_of(acd, "ana", lambda cs: any(c["state"] == "paused" for c in cs))
    assert (changes[0]["state"], changes[0]["reason"], changes[0]["by"]) == ("paused", "réunion", SUPERVISOR)
    assert ("registered", "system:registration") in [(c["state"], c["by"]) for c in changes]
    status, audit = acd.api("GET", "/api/audit?action=team.secretary.set", acd.token)
    assert status == 200 and {(e["actor"], e["target"]) for e in audit["entries"]} >= {
        (SUPERVISOR, "secretary:ana"), (SUPERVISOR, "secretary:bea")}
    status, _ = acd.api("POST", "/api/secretaries/ana/resume", acd.token)
    assert status == 200


def test_after_a_restart_the_team_is_the_databases_not_the_settings(service):
    """The supervisor gives team-kept to dina and changes the pause reasons; the service restarts
    with the same settings (cleo still listed for team-kept): the team read is the edited one, and
    team-kept's next patient rings dina."""
    acd = service
    status, entry = acd.api("PUT", "/api/team/secretaries/dina", acd.token,
                            {"coverage": ["team-kept/*", "team-spare/*"], "levels": {}})
    assert status == 200, entry
    status, entry = acd.api("PUT", "/api/team/secretaries/cleo", acd.token, {"coverage": [], "levels": {}})
    assert status == 200, entry
    status, reasons = acd.api("PUT", "/api/team/pause-reasons", acd.token, {"reasons": ["déjeuner", "formation"]})
    assert status == 200, reasons
    _, before = acd.api("GET", "/api/team", acd.token)

    acd.kill_started()
    assert acd.svc.stop() == []
    acd.registered.clear()
    acd.svc.start()
    acd.svc.wait_edge_ready(2)
    assert "team read from the database" in acd.svc.log_text()

    status, after = acd.api("GET", "/api/team", acd.token)  # her token survived the restart
    assert status == 200, after
    assert after == before and after["pause_reasons"] == ["déjeuner", "formation"]
    assert member(after, "cleo")["coverage"] == [] and "team-kept/*" in member(after, "dina")["coverage"]
    cleo, dina = acd.softphone("cleo"), acd.softphone("dina")
    cleo.register()
    dina.register()
    acd.wait_registered()
    cleo.take([("answer", 300, 1000)])
    dina.take([("answer", 300, 1000)])
    acd.patient("team-kept", "+33621000101")
    record = acd.record("+33621000101")
    assert record.outcome == "answered" and record.secretary == acd.uri("dina")
    dina.finish()
    assert cleo.offers() == []
