"""PostgreSQL stopped under load: calls are still routed and answered, and what the service had to
write meanwhile is stored once the database is back, nothing lost, nothing twice.

`callrouter serve` (four pjsua2 workers, no edge) on a PostgreSQL of the test's own
(tests/pg_private.py), migrated by `callrouter db upgrade`. Patients call at a steady 2 calls/s
(OUTAGE_CALLS calls: half through the triage menu, pressing 3, half straight to the queue);
secretaries are fixed SIP addresses answered by SIPp (nothing to log in, nothing read from the
database to ring them). A few seconds into the load PostgreSQL is killed (pg_ctl stop -m immediate:
a crash, every connection cut) for OUTAGE_S seconds, then started again on the same data directory
and port. The outage is 20 s rather than the 30 s of an incident drill, so that the test stays
within a minute: the node's lease (10 s) is lost either way, and every write retried backs off to
its 10 s ceiling within the first 20 s.

Checked: every patient's call got its 200 and its BYE (SIPp's counts), secretaries answered calls
while the database was down, and afterwards the call records are exactly the calls the
secretaries were offered (one row per call, each closed `answered` by its secretary, no leg left
open), and their state changes were written, none twice. Beside it, the call recorder alone
through a crashed and a frozen server, and (expected to fail until it is fixed) an escalation asked
during the outage.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from callrouter.devtools import sipp as scen
from callrouter.devtools.sipp_xml import uas_reply
from callrouter.devtools.serve import ServeProcess, base_config, free_udp_port
from callrouter.controller.recorder import CallRecorder
from callrouter.store.calls import CallQuery, CallRepository
from callrouter.store.db import Database
from callrouter.store.escalations import EscalationRepository
from callrouter.store.models_team import SecretaryStateChange
from tests.app.acd_support import Practice, offered_call_ids
from tests.escalation.support import FakeChannel, clock_at, dialplan, make_engine
from tests.factories import REPO
from tests.media.harness import RtpSink
from tests.pg_private import private_pg  # noqa: F401 (fixture)
from tests.sip.harness import Sipp, wait_for

pytestmark = pytest.mark.integration

CALLS_EACH = 12  # per patients' SIPp, one on each worker (no edge spreads them), 0.5 call/s each
WORKERS = 4  # pjsua's build holds 4 legs per worker: a worker full refuses a call (486)
OUTAGE_CALLS = WORKERS * CALLS_EACH  # at 2 calls/s
OUTAGE_AFTER_S = 3.0  # of load before PostgreSQL goes down
OUTAGE_S = 20.0
SECRETARIES_EACH = 4
TALK_MS = 1000
MENU = Practice("pg-menu", "+33100000201", (), menu=True)
QUEUE = Practice("pg-queue", "+33100000202", ())


AWAY = "sip:pg-queue-away@127.0.0.1:{port}"  # declines her offers (486), from the outage on


def secretary_uris(practice: Practice, ports: list[int]) -> list[str]:
    return [f"sip:{practice.name}-{n}@127.0.0.1:{port}" for n, port in enumerate(ports)]


def declining_phone(directory: Path) -> Path:
    """A phone answering every offer 486 Busy Here: a missed offer, which pauses her."""
    contact, reply = uas_reply("away")
    path = directory / "away.xml"
    path.write_text(f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="away">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 486 Busy Here
{reply}      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
""")
    return path


def state_changes(url: str, of: str | None = None) -> list[tuple]:
    """(secretary, at, state, how many rows) of the stored state history (of one secretary)."""
    db = Database.from_url(url)
    try:
        with db.transaction() as s:
            query = (select(SecretaryStateChange.secretary, SecretaryStateChange.at, SecretaryStateChange.state,
                            func.count())
                     .group_by(SecretaryStateChange.secretary, SecretaryStateChange.at, SecretaryStateChange.state))
            if of is not None:
                query = query.where(SecretaryStateChange.secretary == of)
            return [tuple(row) for row in s.execute(query)]
    finally:
        db.dispose()


@pytest.fixture
def outage_service(tmp_path, private_pg, prompts_built):
    dialplans = tmp_path / "dialplans"
    dialplans.mkdir()
    ports = {p.name: [free_udp_port() for _ in range(SECRETARIES_EACH)] for p in (MENU, QUEUE)}
    for practice in (MENU, QUEUE):
        (dialplans / f"{practice.name}.yaml").write_text(practice.dialplan())
    away_port = free_udp_port()
    agents = {f"{p.name}/*": secretary_uris(p, ports[p.name]) for p in (MENU, QUEUE)}
    agents[f"{QUEUE.name}/*"].append(AWAY.format(port=away_port))
    config = base_config(tmp_path, dialplans, REPO / "prompts", workers=WORKERS, agents=agents)
    config["controller"]["max_missed_offers"] = 1
    config["database_url"] = private_pg.url
    svc = ServeProcess(tmp_path, config).start()
    svc.secretary_ports, svc.away_port = ports, away_port
    try:
        yield svc
    finally:
        stray = svc.stop()
        assert not stray, f"processes left running after stop: {stray}"


def test_postgresql_down_under_load_loses_no_call_and_no_record(outage_service, private_pg, tmp_path):
    svc = outage_service
    runs: list[Sipp] = []
    sinks: list[RtpSink] = []
    try:
        secretaries = []
        for practice in (MENU, QUEUE):
            for n, port in enumerate(svc.secretary_ports[practice.name]):
                sinks.append(RtpSink())
                scenario = scen.secretary(tmp_path, f"{practice.name}-{n}", practice.name, answer_after_ms=300,
                                          hangup_after_ms=TALK_MS)
                secretaries.append(Sipp(tmp_path, str(scenario), port=port, calls=None, timeout_s=180,
                                        extra=["-set", "rtp_port", str(sinks[-1].port)], name=f"{practice.name}-{n}"))
        patients = []
        for worker, port in enumerate(svc.worker_ports()):
            practice, steps = (MENU, [("pause", 1500), ("digit", "3")]) if worker % 2 == 0 else (QUEUE, [])
            sinks.append(RtpSink())
            scenario = scen.caller(tmp_path, f"patients-{worker}", steps, end="wait_bye", wait_bye_ms=60000)
            patients.append(Sipp(tmp_path, str(scenario), remote=("127.0.0.1", port), calls=CALLS_EACH, rate=1,
                                 timeout_s=150, name=f"patients-{worker}",
                                 extra=["-rp", "2000", "-s", practice.number, "-set", "caller", f"+3361200{worker}000",
                                        "-set", "rtp_port", str(sinks[-1].port)]))
        runs = secretaries + patients

        time.sleep(OUTAGE_AFTER_S)
        private_pg.stop()
        down_at = dt.datetime.now(dt.timezone.utc)
        # Her phone comes up: her next offer is declined and she is paused (a state change to write).
        away = Sipp(tmp_path, str(declining_phone(tmp_path)), port=svc.away_port, calls=None, timeout_s=180,
                    name="away")
        runs.append(away)
        answered_before = sum(s.received("ACK") for s in secretaries)
        time.sleep(OUTAGE_S)
        answered_during = sum(s.received("ACK") for s in secretaries) - answered_before
        backlog = svc.metrics()["callrouter_call_record_backlog"]  # about 12 writes a call: all kept
        declined_during = len(offered_call_ids(away))  # retransmissions counted once
        private_pg.start()
        up_at = dt.datetime.now(dt.timezone.utc)

        for run in patients:
            code = run.wait(120)
            assert code == 0, f"patients' SIPp exit {code} (a call failed): {run.errors()}"
        assert answered_during > 0, "no call answered while PostgreSQL was down"
        assert backlog > 0, "no call-record write waited for PostgreSQL: was it down?"
        assert declined_during == 1, declined_during  # paused at once (max_missed_offers 1)
        for run in patients:  # its -m calls all successful: each answered (200) and ended by the service's BYE
            assert run.received("BYE") >= CALLS_EACH, run.received("BYE")

        offered = [call_id for s in secretaries for call_id in offered_call_ids(s)]
        assert len(offered) == len(set(offered)) == OUTAGE_CALLS  # each call rang one secretary once

        def all_closed():
            records = svc.calls()
            return records if sum(1 for r in records if r.ended_at) >= OUTAGE_CALLS else None

        records = wait_for(all_closed, timeout=60, interval=0.5)
        assert records, f"{sum(1 for r in svc.calls() if r.ended_at)} call records closed; log:\n{svc.log_tail()}"
        assert len(records) == OUTAGE_CALLS
        assert sorted(r.id for r in records) == sorted(offered)
        away_uri = AWAY.format(port=svc.away_port)
        uris = {p.name: set(secretary_uris(p, svc.secretary_ports[p.name])) for p in (MENU, QUEUE)}
        for record in records:
            assert record.outcome == "answered" and record.secretary in uris[record.practice], record
            assert all(leg.ended_at is not None for leg in record.legs), record
            ours = [leg for leg in record.legs if leg.kind == "secretary" and leg.party != away_uri]
            assert [leg.party for leg in ours] == [record.secretary], record.legs
            assert [leg.kind for leg in record.legs].count("caller") == 1, record.legs
            menu = [("triage", "3")] if record.practice == MENU.name else []
            assert [(a.menu, a.digit) for a in record.ivr_answers] == menu, record.ivr_answers
        during = [r for r in records if down_at <= r.answered_at <= up_at]
        assert during, "no record answered during the outage"

        # The state history's retries wait 10 s at most: it may come after the call records.
        assert wait_for(lambda: state_changes(private_pg.url, away_uri), timeout=30, interval=0.5), svc.log_tail()
        rows = state_changes(private_pg.url)
        assert all(count == 1 for *_, count in rows), rows  # none written twice
        [(who, at, state, _)] = rows  # the only state change of the run (the others never changed state)
        assert (who, state) == (away_uri, "paused") and down_at <= at <= up_at, (rows, down_at, up_at)
    finally:
        for run in runs:
            run.kill()
        for sink in sinks:
            sink.close()


@pytest.mark.parametrize("outage", ["crash", "freeze"])
def test_the_call_recorder_keeps_its_writes_through_a_dead_or_hung_postgresql(private_pg, outage):
    """The recorder alone on the private PostgreSQL, crashed (connections refused) or frozen
    (SIGSTOP: connections accepted and never answered, each write hangs): calls opened and closed
    meanwhile are all stored once it is back, once each, in order (no leg left open)."""
    db = Database.from_url(private_pg.url)
    db.upgrade()
    recorder = CallRecorder(CallRepository(db), max_backoff_s=1.0)
    recorder.start()
    try:
        def call(n: int) -> None:
            now = dt.datetime.now(dt.timezone.utc)
            call_id = f"{outage}-{n}"
            recorder.open_call(call_id, "pg-queue", QUEUE.number, "+33612000000", now, worker="w0")
            recorder.leg_started(call_id, f"{call_id}-caller", "caller", "+33612000000", now)
            recorder.queued(call_id, "general", now)
            recorder.leg_started(call_id, f"{call_id}-s", "secretary", "sip:s@127.0.0.1", now)
            recorder.answered(call_id, "sip:s@127.0.0.1", now)
            recorder.leg_ended(f"{call_id}-s", "200 OK", now)
            recorder.leg_ended(f"{call_id}-caller", "200 OK", now)
            recorder.close_call(call_id, "answered", now)

        call(0)
        assert recorder.flush(30)
        down, up = (private_pg.stop, private_pg.start) if outage == "crash" else (private_pg.freeze, private_pg.thaw)
        down()
        for n in range(1, 21):
            call(n)
            time.sleep(0.2)
        assert recorder.pending() > 0  # waiting for the database
        up()
        assert recorder.flush(60), f"{recorder.pending()} writes still queued"
        records = CallRepository(db).query(CallQuery(limit=100))
        assert sorted(r.id for r in records) == sorted(f"{outage}-{n}" for n in range(21))
        for record in records:
            assert record.outcome == "answered" and record.secretary == "sip:s@127.0.0.1", record
            assert sorted(leg.kind for leg in record.legs) == ["caller", "secretary"], record.legs
            assert all(leg.end_cause == "200 OK" for leg in record.legs), record.legs
        if outage == "crash":
            assert recorder.failures > 0
    finally:
        private_pg.thaw()  # a frozen server would hold the recorder's stop
        recorder.stop(5)
        db.dispose()


def test_an_escalation_asked_during_an_outage_starts_once_the_database_is_back(private_pg):
    """An urgent call's chain requested while PostgreSQL is down: once it is back, the chain is
    stored and its first SMS sent (the practitioner must be alerted, late rather than never)."""
    db = Database.from_url(private_pg.url)
    db.upgrade()
    channels = {"sms": FakeChannel(), "email": FakeChannel()}
    clock = clock_at()
    engine, _ = make_engine(db, channels, clock)
    engine.startService()
    try:
        private_pg.stop()
        session = SimpleNamespace(call_id="call-outage", dialplan=dialplan(), call=SimpleNamespace(caller="+33612345678"))
        engine.escalate(session, "urgent")
        private_pg.start()
        for _ in range(60):
            clock.advance(1)
        [view] = EscalationRepository(db).active()
        assert view.call_id == "call-outage"
        assert len(channels["sms"].sent) == 1
    finally:
        engine.stopService()
        db.dispose()
