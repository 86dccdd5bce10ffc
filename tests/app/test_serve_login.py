"""The production path of a secretary's shift, on the whole service behind the real Kamailio edge:
`callrouter serve` with `controller.login_required: true` (the default), two pjsua2 workers, a
secretary's SIPp softphone registered with digest auth, and patients calling through the edge.

A registered softphone alone is not enough: she is offered calls only once she has logged in
through the HTTP API (POST /api/secretaries/me/login with the token of her console's sign-in), and
no longer once she has logged out. See tests/app/acd_support.py for the softphones and patients.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.app.acd_support import Practice, running_acd, secretary_legs, sleep_until

pytestmark = pytest.mark.integration

PRACTICE = Practice("acd-login", "+33100000109", ("nina",))
UNSERVED_CALL_MS = 4000  # how long an unserved patient stays before hanging up: offers come in < 1 s
AFTER_WRAP_UP = dt.timedelta(seconds=2)  # the practice's 1 s wrap-up is surely over


@pytest.fixture
def acd(tmp_path, prompts_built):
    with running_acd(tmp_path, [PRACTICE], login_required=True) as acd:
        yield acd


def nobody_to_offer_it_to(record) -> bool:
    """The call went to the overflow route (voicemail) at once, as nobody covering the practice
    takes calls, and no phone rang."""
    return (record.route == "overflow" and record.reason.endswith("overflow on nobody")
            and record.queued_at is None and record.offered_at is None and secretary_legs(record) == [])


def test_a_registered_softphone_gets_calls_only_between_her_api_login_and_logout(acd):
    """nina's softphone is registered and she has signed in to her console, but has not logged in:
    a patient calling is sent to voicemail at once, as nobody takes calls, never offered to her. She logs in through the API: the next
    patient is offered to her, she answers and the patient's voice reaches her phone. She logs
    out: the next patient goes to voicemail again, never offered to her."""
    nina = acd.softphone("nina")
    nina.register()
    acd.wait_registered()
    token = acd.sign_in("nina")
    status, me = acd.api("GET", "/api/secretaries/me", token)
    assert status == 200 and (me["state"], me["logged_in"], me["registered"]) == ("offline", False, True), me

    phone = nina.take([("answer", 300, 4000)])  # the first offer she gets, whichever call it is
    acd.patient("acd-login", "+33619000001", [("pause", UNSERVED_CALL_MS)], end="bye")
    before_login = acd.record("+33619000001")
    assert nobody_to_offer_it_to(before_login), (before_login.route, before_login.reason)
    assert nina.offers() == []

    status, me = acd.api("POST", "/api/secretaries/me/login", token)
    assert status == 200 and (me["state"], me["logged_in"]) == ("available", True), me
    acd.patient("acd-login", "+33619000002", [("pause", 2500), ("audio", 3000)])
    logged_in = acd.record("+33619000002")
    nina.finish()
    assert logged_in.outcome == "answered" and logged_in.secretary == acd.uri("nina"), logged_in
    assert [leg.party for leg in secretary_legs(logged_in)] == [acd.uri("nina")]
    assert nina.offers() == [logged_in.id]
    assert nina.sinks[-1].audible() >= 50, "the bridge carried none of the patient's voice to her phone"
    assert phone.proc.returncode == 0

    sleep_until(logged_in.ended_at + AFTER_WRAP_UP)
    status, me = acd.api("POST", "/api/secretaries/me/logout", token)
    assert status == 200 and (me["state"], me["logged_in"]) == ("offline", False), me
    nina.take([("answer", 300, 1000)])  # her phone still listens and stays registered
    acd.patient("acd-login", "+33619000003", [("pause", UNSERVED_CALL_MS)], end="bye")
    after_logout = acd.record("+33619000003")
    assert nobody_to_offer_it_to(after_logout), (after_logout.route, after_logout.reason)
    assert nina.offers() == [logged_in.id]
    status, me = acd.api("GET", "/api/secretaries/me", token)
    assert (me["state"], me["registered"]) == ("offline", True), me
