"""Who gets which call, shown on the whole service behind the real Kamailio edge.

`callrouter serve` runs with its edge and two pjsua2 workers; secretaries are softphones that
REGISTER at the edge with digest auth and take (or let ring) their offers through SIPp; patients
call the practice's number through Kamailio. What happened is read from the call records the service
stored and from the INVITEs each softphone received. One service is shared by the module: each test
has a practice (and secretaries) of its own. Ring timeout 3 s, 2 missed offers in a row pause a
secretary (tests/app/acd_support.py).
"""

from __future__ import annotations

import datetime as dt

import pytest

from callrouter.devtools import sipp as scen
from callrouter.devtools.serve import free_udp_port
from callrouter.store.db import Database
from callrouter.store.models_recording import VoicemailMessage
from callrouter.store.tasks import TaskQuery, TaskRepository
from tests.media.harness import RtpSink
from tests.sip.harness import wait_for
from tests.media.harness import Sipp as MediaSipp
from tests.app.acd_support import (
    MAX_MISSED_OFFERS,
    RING_TIMEOUT_S,
    Practice,
    running_acd,
    seconds,
    secretary_legs,
    sleep_until,
)

pytestmark = pytest.mark.integration

PRACTICES = [
    Practice("acd-idle", "+33100000101", ("alice", "bob")),
    Practice("acd-ring", "+33100000102", ("carol", "dave")),
    Practice("acd-wrap", "+33100000103", ("erin",), wrap_up="4s"),
    Practice("acd-pause", "+33100000104", ("grace", "heidi")),
    Practice("acd-urgent", "+33100000105", ("ivan",), menu=True),
    Practice("acd-overflow", "+33100000106", ("judy",), wait_max="4s", queue_max=1),
    # chloe never registers, emma registers then unregisters: both sort before lea, so with ties
    # on idleness they would be offered first if registration were not checked.
    Practice("acd-unregistered", "+33100000107", ("chloe", "emma", "lea")),
    Practice("acd-callback", "+33100000108", ("kim",), overflow="callback_offer"),
]
TRUNK_PORT = free_udp_port()  # the patients called back are called there (a SIPp UAS of the test)
WRAP_UP_S = 4.0  # acd-wrap's general queue
WAIT_MAX_S = 4.0  # acd-overflow's
AFTER_WRAP_UP = dt.timedelta(seconds=2)  # the other practices' 1 s wrap-up is surely over


@pytest.fixture(scope="module")
def acd(tmp_path_factory, prompts_built):
    with running_acd(tmp_path_factory.mktemp("acd"), PRACTICES, outbound_trunk=f"127.0.0.1:{TRUNK_PORT}") as acd:
        yield acd


@pytest.fixture
def service(acd):
    """The shared service; whatever SIPp a test started is stopped when it ends."""
    try:
        yield acd
    finally:
        acd.kill_started()


def overflows(metrics: dict[str, float], cause: str) -> float:
    return sum(v for k, v in metrics.items() if k.startswith("callrouter_overflows_total{")
               and 'practice="acd-overflow"' in k and f'cause="{cause}"' in k)


def answered(record) -> bool:
    return record.ended_at is not None and record.outcome == "answered"


def test_consecutive_calls_go_to_the_secretary_idle_the_longest(service):
    """alice takes call 1 (the tie on idleness ends on the name) and talks long; bob takes call 2
    and hangs up quickly; call 3, once both are free, goes to bob, idle the longest (not to alice,
    as taking turns would)."""
    acd = service
    alice, bob = acd.softphone("alice"), acd.softphone("bob")
    alice.register()
    bob.register()
    acd.wait_registered()
    alice.take([("answer", 300, 7000)])
    bob.take([("answer", 300, 1000), ("answer", 300, 1000)])

    acd.patient("acd-idle", "+33611000001")
    first = acd.record("+33611000001", lambda r: r.answered_at is not None)
    acd.patient("acd-idle", "+33611000002")
    second = acd.record("+33611000002")
    assert answered(second)
    first = acd.record("+33611000001")
    sleep_until(first.ended_at + AFTER_WRAP_UP)  # both free, bob for longer
    acd.patient("acd-idle", "+33611000003")
    third = acd.record("+33611000003")

    assert first.secretary == acd.uri("alice") and second.secretary == acd.uri("bob")
    assert second.ended_at < first.ended_at  # bob has been idle the longest when call 3 comes
    assert third.secretary == acd.uri("bob") and answered(third)
    assert [leg.party for leg in secretary_legs(third)] == [acd.uri("bob")]  # alice's phone never rang
    assert alice.offers() == [first.id] and bob.offers() == [second.id, third.id]
    alice.finish()
    bob.finish()


def test_an_offer_not_answered_in_time_is_cancelled_and_goes_to_the_next_secretary(service):
    """carol (first on the tie) lets her phone ring: after ring_timeout_s the service cancels her
    offer and rings dave, who answers."""
    acd = service
    carol, dave = acd.softphone("carol"), acd.softphone("dave")
    carol.register()
    dave.register()
    acd.wait_registered()
    carol.take([("ignore", 0, 0)])
    dave.take([("answer", 300, 1000)])

    acd.patient("acd-ring", "+33612000001")
    record = acd.record("+33612000001")

    assert answered(record) and record.secretary == acd.uri("dave")
    first, second = secretary_legs(record)
    assert (first.party, first.end_cause) == (acd.uri("carol"), "ring_timeout")
    assert second.party == acd.uri("dave")
    rang = seconds(second.started_at, first.started_at)
    assert RING_TIMEOUT_S - 0.3 <= rang <= RING_TIMEOUT_S + 3, rang
    assert carol.offers() == [record.id] and dave.offers() == [record.id]
    carol.finish()  # her phone was cancelled (CANCEL, 487, ACK), as a softphone sees it
    dave.finish()


def test_a_secretary_is_not_offered_a_call_before_her_wrap_up_is_over(service):
    """erin is alone on a queue with a 4 s wrap-up: the call waiting while she talks is offered to
    her only 4 s after she hung up."""
    acd = service
    erin = acd.softphone("erin")
    erin.register()
    acd.wait_registered()
    erin.take([("answer", 300, 2500), ("answer", 300, 1000)])

    acd.patient("acd-wrap", "+33613000001")
    acd.record("+33613000001", lambda r: r.answered_at is not None)
    acd.patient("acd-wrap", "+33613000002")
    acd.record("+33613000002", lambda r: r.queued_at is not None)
    first = acd.record("+33613000001")
    second = acd.record("+33613000002")

    assert answered(first) and answered(second) and second.secretary == acd.uri("erin")
    assert second.queued_at < first.ended_at  # it was waiting when she hung up
    gap = seconds(second.offered_at, first.ended_at)
    assert WRAP_UP_S - 0.3 <= gap <= WRAP_UP_S + 3, gap
    assert erin.offers() == [first.id, second.id]
    erin.finish()


def test_missed_offers_pause_a_secretary_until_her_softphone_registers_again(service):
    """grace lets two offers in a row ring out (max_missed_offers = 2): she is paused, and the next
    call goes straight to heidi although grace has been idle longer. Turning her softphone off and
    on (unregister, register) brings her back: the next call is hers."""
    acd = service
    assert MAX_MISSED_OFFERS == 2
    grace, heidi = acd.softphone("grace"), acd.softphone("heidi")
    grace.register()
    heidi.register()
    acd.wait_registered()
    grace.take([("ignore", 0, 0), ("ignore", 0, 0)])
    heidi.take([("answer", 300, 1000)] * 3)

    records = []
    for n in (1, 2, 3):
        acd.patient("acd-pause", f"+3361400000{n}")
        records.append(acd.record(f"+3361400000{n}"))
        sleep_until(records[-1].ended_at + AFTER_WRAP_UP)
    first, second, third = records

    for missed in (first, second):
        assert answered(missed) and missed.secretary == acd.uri("heidi")
        assert [(leg.party, leg.end_cause) for leg in secretary_legs(missed)][0] == (acd.uri("grace"), "ring_timeout")
    assert answered(third) and [leg.party for leg in secretary_legs(third)] == [acd.uri("heidi")]
    assert seconds(third.offered_at, third.queued_at) < 1.5  # no ring timeout spent on grace
    grace.finish()
    assert grace.offers() == [first.id, second.id]

    grace.unregister()
    acd.wait_registered()
    grace.register()
    acd.wait_registered()
    grace.take([("answer", 300, 1000)])
    acd.patient("acd-pause", "+33614000004")
    fourth = acd.record("+33614000004")
    assert answered(fourth) and fourth.secretary == acd.uri("grace")
    assert [leg.party for leg in secretary_legs(fourth)] == [acd.uri("grace")]
    grace.finish()
    heidi.finish()


def test_an_urgent_call_is_offered_before_a_normal_call_that_waited_longer(service):
    """ivan is on a call; a patient choosing an appointment (3) waits, then one choosing the urgent
    queue (2, priority 10) arrives: when ivan is free, the urgent call is offered first."""
    acd = service
    ivan = acd.softphone("ivan")
    ivan.register()
    acd.wait_registered()
    ivan.take([("answer", 300, 9000), ("answer", 300, 1000), ("answer", 300, 1000)])
    menu = [("pause", 1500)]

    acd.patient("acd-urgent", "+33615000001", menu + [("digit", "3")])
    acd.record("+33615000001", lambda r: r.answered_at is not None)
    acd.patient("acd-urgent", "+33615000002", menu + [("digit", "3")])
    acd.record("+33615000002", lambda r: r.queued_at is not None)
    acd.patient("acd-urgent", "+33615000003", menu + [("digit", "2")])
    acd.record("+33615000003", lambda r: r.queued_at is not None)
    first = acd.record("+33615000001")
    normal = acd.record("+33615000002")
    urgent = acd.record("+33615000003")

    assert (normal.queue, urgent.queue) == ("general", "urgent")
    assert normal.queued_at < urgent.queued_at < first.ended_at  # both waited for ivan
    assert all(answered(r) and r.secretary == acd.uri("ivan") for r in (first, normal, urgent))
    assert urgent.offered_at < normal.offered_at
    assert ivan.offers() == [first.id, urgent.id, normal.id]
    ivan.finish()


def test_overflow_on_queue_length_and_on_wait_sends_the_patient_to_voicemail(service):
    """judy is on a call; queue_max 1 and wait_max 4 s: the second patient waits, the third finds
    the line full and overflows at once; the second overflows after 4 s. Both leave a message
    (the overflow route) and judy is never offered either call."""
    acd = service
    judy = acd.softphone("judy")
    judy.register()
    acd.wait_registered()
    judy.take([("answer", 300, 15000)])
    before = acd.svc.metrics()

    acd.patient("acd-overflow", "+33616000001")
    acd.record("+33616000001", lambda r: r.answered_at is not None)
    acd.patient("acd-overflow", "+33616000002", [("pause", 13000), ("audio", 1500)], end="bye")
    acd.record("+33616000002", lambda r: r.queued_at is not None)
    acd.patient("acd-overflow", "+33616000003", [("pause", 7000), ("audio", 1500)], end="bye")
    full = acd.record("+33616000003")
    waited = acd.record("+33616000002")
    first = acd.record("+33616000001")

    assert answered(first) and judy.offers() == [first.id]
    assert full.route == "overflow" and full.queued_at is None and full.outcome == "voicemail"
    assert waited.route == "overflow" and waited.queued_at is not None and waited.outcome == "voicemail"
    assert WAIT_MAX_S - 0.3 <= seconds(waited.routed_at, waited.queued_at) <= WAIT_MAX_S + 3, waited.routed_at
    assert full.offered_at is None and waited.offered_at is None
    assert full.reason.endswith("overflow on length") and waited.reason.endswith("overflow on wait")
    assert wait_for(lambda: {full.id, waited.id} <= voicemail_calls(acd, "acd-overflow"), timeout=10)
    after = acd.svc.metrics()
    assert overflows(after, "length") - overflows(before, "length") == 1, after
    assert overflows(after, "wait") - overflows(before, "wait") == 1, after
    judy.finish()


def test_a_softphone_not_registered_is_never_offered_a_call(service):
    """chloe never registered and emma unregistered (her phone still listens): every call goes to
    lea, the only one registered, though the two others sort first on the tie of idleness."""
    acd = service
    emma, lea = acd.softphone("emma"), acd.softphone("lea")
    emma.register()
    lea.register()
    acd.wait_registered()
    emma.unregister()
    acd.wait_registered()
    emma.take([("answer", 300, 1000)])
    lea.take([("answer", 300, 1000)] * 2)

    acd.patient("acd-unregistered", "+33617000001")
    first = acd.record("+33617000001")
    sleep_until(first.ended_at + AFTER_WRAP_UP)
    acd.patient("acd-unregistered", "+33617000002")
    second = acd.record("+33617000002")

    for record in (first, second):
        assert answered(record) and [leg.party for leg in secretary_legs(record)] == [acd.uri("lea")]
    assert emma.offers() == []
    lea.finish()


def test_a_callback_task_from_the_callers_digits_is_offered_then_the_patient_called_back(service):
    """Nobody covers acd-callback: the patient overflows to the callback offer, presses 1 to accept
    and 1 to confirm the number read back, and hangs up with a task. kim then registers: the task
    rings her phone ("Rappel - ..."), and once she answers the patient's phone (the trunk) rings;
    the patient answers, hears « tapez 1 pour être mis en relation », presses 1: they talk, and the
    task is done, linked to that outbound leg."""
    acd = service
    patient_number = "+33618000001"
    # SIPp replays a recorded digit with its RTP timestamp, so the same digit twice in a row would
    # look like one event repeated: a 3 (ignored while the number is read back) goes in between.
    acd.patient("acd-callback", patient_number, [("pause", 1500), ("digit", "1"), ("pause", 1500), ("digit", "3"),
                                                 ("pause", 800), ("digit", "1")])
    record = acd.record(patient_number)
    assert record.outcome == "callback_requested" and record.route == "overflow"

    db = Database.from_url(acd.svc.db_url)
    try:
        tasks = TaskRepository(db)
        [task] = tasks.list(TaskQuery(practices=frozenset({"acd-callback"})))
        assert (task.number, task.source, task.call_id, task.state) == (patient_number, "overflow", record.id, "open")

        workdir = acd.root / "trunk"
        workdir.mkdir()
        steps = [("pause", 1500), ("digit", "1"), ("pause", 2000)]  # her 1 once she heard the notice
        called_back = MediaSipp(str(scen.called_back_patient_phone(workdir, "called-back", steps)),
                                variables={"rtp_port": str(RtpSink().port)}, workdir=workdir, timeout_s=90,
                                extra=["-p", str(TRUNK_PORT)])
        acd.started.append(called_back)
        kim = acd.softphone("kim")
        kim.register()
        kim_phone = kim.take([("answer", 300, 0)])  # waits for the service's BYE
        assert called_back.wait(90) == 0, called_back.errors()
        kim.finish()
        done = wait_for_task(tasks, task.id, "done")
        assert done.attempts == 1 and done.assigned_to == "kim" and done.done_leg
        invites = kim_phone.messages.read_text(errors="replace")
        assert f"X-Callrouter-Task-Id: {task.id}" in invites and "Rappel - Cabinet acd-callback" in invites
    finally:
        db.dispose()


def wait_for_task(tasks, task_id, state, timeout=20):
    import time

    deadline = time.monotonic() + timeout
    while (view := tasks.get(task_id)).state != state and time.monotonic() < deadline:
        time.sleep(0.2)
    assert view.state == state, view
    return view


def voicemail_calls(acd, practice: str) -> set[str]:
    """The calls whose message the practice's voicemail holds, sealed in the media vault."""
    db = Database.from_url(acd.svc.db_url)
    try:
        with db.transaction() as s:
            return {m.call_id for m in s.query(VoicemailMessage).filter_by(practice=practice)
                    if m.file and m.sha256}
    finally:
        db.dispose()
