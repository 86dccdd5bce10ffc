"""A call handed to a colleague, on the whole service behind the real Kamailio edge.

`callrouter serve` with its edge and one worker, shared by the tests: every call's three legs
(the patient, the first secretary, the colleague) are on that worker, call after call, so a slot
the worker's pjsua still held after a call would refuse the next transfer's leg (PJ_ETOOMANY). The
secretaries are SIPp softphones
registered at the edge with digest auth, the patient a SIPp calling the practice's number through
Kamailio. The first secretary answers, then transfers the call through the API
(POST /api/calls/{id}/transfer); the colleague answers (the patient's audio reaches her, the first
secretary's leg is hung up) or lets it ring out (the patient is back with the first secretary).
Ring timeout 3 s (tests/app/acd_support.py).
"""

from __future__ import annotations

import pytest

from tests.app.acd_support import RING_TIMEOUT_S, Practice, running_acd, secretary_legs
from tests.sip.harness import wait_for

pytestmark = pytest.mark.integration

PRACTICES = [Practice("xfer-taken", "+33100000201", ("anne", "berthe")),
             Practice("xfer-back", "+33100000202", ("claire", "denise")),
             Practice("xfer-twice", "+33100000203", ("emma", "fanny"))]


@pytest.fixture(scope="module")
def acd(tmp_path_factory, prompts_built):
    with running_acd(tmp_path_factory.mktemp("xfer"), PRACTICES, workers=1) as acd:
        yield acd


@pytest.fixture
def service(acd):
    """The shared service; whatever SIPp a test started is stopped when it ends."""
    try:
        yield acd
    finally:
        acd.kill_started()


def transfer_legs(record) -> list:
    return [leg for leg in record.legs if leg.kind == "transfer"]


def start_call(acd, practice, first, second, caller, second_plan, steps):
    """`first` answers the patient's call; returns her token once the call is answered."""
    a, b = acd.softphone(first), acd.softphone(second)
    a.register()
    b.register()
    acd.wait_registered()
    a.take([("answer", 300, 0)])  # waits for the service's BYE
    b.take([second_plan])
    acd.patient(practice, caller, steps, end="bye")
    record = acd.record(caller, lambda r: r.answered_at is not None, timeout=30)
    assert record.secretary == acd.uri(first)
    return a, b, record, acd.sign_in(first)


def test_the_colleague_answers_hears_the_patient_and_the_first_leg_is_hung_up(service):
    acd = service
    anne, berthe, record, token = start_call(
        acd, "xfer-taken", "anne", "berthe", "+33621000001", ("answer", 1000, 0),
        [("pause", 3500), ("audio", 4000)])
    status, listed = acd.api("GET", f"/api/calls/{record.id}/colleagues", token)
    assert status == 200 and [c["id"] for c in listed["colleagues"]] == ["berthe"]
    assert listed["colleagues"][0]["display_name"] == "Berthe"
    status, body = acd.api("POST", f"/api/calls/{record.id}/transfer", token, {"to": "berthe"})
    assert status == 202, body
    anne.finish(30)  # the service hung her up once berthe answered
    berthe.finish(40)  # the patient hangs up after her audio: berthe is hung up too
    heard = berthe.sinks[-1].wait_audible(50, timeout=10)
    assert heard >= 50, f"the patient's audio did not reach berthe ({heard} packets)"
    final = acd.record("+33621000001")
    assert final.outcome == "answered" and final.secretary == acd.uri("anne")  # answered once, by anne
    [first] = secretary_legs(final)
    [taken] = transfer_legs(final)
    assert first.party == acd.uri("anne") and first.end_cause == "transferred"
    assert taken.party == acd.uri("berthe") and taken.ended_at is not None
    assert berthe.offers() == [final.id]


def test_the_colleague_not_answering_in_time_puts_the_patient_back_with_the_first_secretary(service):
    acd = service
    claire, denise, record, token = start_call(
        acd, "xfer-back", "claire", "denise", "+33621000002", ("ignore", 0, 0),
        [("pause", 4000 + int(RING_TIMEOUT_S * 1000)), ("audio", 3000)])
    status, body = acd.api("POST", f"/api/calls/{record.id}/transfer", token, {"to": "denise"})
    assert status == 202, body
    denise.finish(30)  # her phone rang out: cancelled by the service
    failed = wait_for(lambda: (transfer_legs(acd.record("+33621000002", lambda r: True)) or [None])[0], timeout=15)
    assert failed is not None
    back = wait_for(lambda: (t := transfer_legs(acd.record("+33621000002", lambda r: True))) and t[0].ended_at
                    and t[0], timeout=15)
    assert back and back.end_cause == "ring_timeout", back
    sink = claire.sinks[-1]
    before = sink.audible()
    claire.finish(40)  # the call went on with her until the patient hung up
    assert sink.audible() > before + 50, "the patient's audio did not come back to claire"
    final = acd.record("+33621000002")
    assert final.outcome == "answered" and final.secretary == acd.uri("claire")
    [first] = secretary_legs(final)
    assert first.party == acd.uri("claire") and first.end_cause != "transferred"
    status, body = acd.api("POST", f"/api/calls/{final.id}/transfer", token, {"to": "denise"})
    assert status == 404 and "terminé" in body["message"]


def test_two_transfers_back_to_back_on_one_worker_both_reach_the_colleague(service):
    """Two calls one after the other, each answered and handed to the colleague seconds after the
    last one ended: the worker holds all three legs of each (it is the only one), and the second
    transfer's leg gets a call slot like the first."""
    acd = service
    token = None
    for caller in ("+33621000003", "+33621000004"):
        emma, fanny = acd.softphone("emma"), acd.softphone("fanny")
        emma.register()
        fanny.register()
        acd.wait_registered()
        emma.take([("answer", 300, 0)])
        fanny.take([("answer", 500, 0)])
        acd.patient("xfer-twice", caller, [("pause", 3000), ("audio", 2000)], end="bye")
        record = acd.record(caller, lambda r: r.answered_at is not None, timeout=30)
        token = token or acd.sign_in("emma")  # once: a TOTP code is taken only once
        status, body = acd.api("POST", f"/api/calls/{record.id}/transfer", token, {"to": "fanny"})
        assert status == 202, body
        emma.finish(30)
        fanny.finish(40)
        final = acd.record(caller)
        [taken] = transfer_legs(final)
        assert final.worker == "w0" and taken.party == acd.uri("fanny") and taken.end_cause == "caller_ended", \
            (final.worker, taken.party, taken.end_cause)
        assert fanny.offers() == [final.id]
