"""The settings file edited while `callrouter serve` runs, then SIGHUP: the live settings are in force
for the next offer, the media pool follows its new floor, what needs a restart is named, and a
broken file is refused with its reason while the running values stay; no call is dropped.

Shown on the whole service behind the real Kamailio edge: a SIPp patient waits in the queue, a
SIPp secretary lets her offers ring out, then answers; how long each offer rang is read from the
call's stored legs, the workers from the metrics, the reloads from the log, the audit log and
the metrics.
"""

from __future__ import annotations

import json
import signal

import pytest

from pathlib import Path

from callrouter.store.audit import AuditLog
from callrouter.store.db import Database
from tests.app.acd_support import Acd, Practice, seconds, secretary_legs, start_acd

pytestmark = pytest.mark.integration

PRACTICE = Practice("reload", "+33100000301", ("rosa",), wait_max="600s")
FIRST_RING_S, NEXT_RING_S = 3.0, 9.0  # the ring timeout before and after the reload


def start(root: Path) -> Acd:
    """`callrouter serve` with its edge and three workers (floor and ceiling), one secretary who is
    never paused for the offers she lets ring out."""
    return start_acd(root, [PRACTICE], workers=3, controller={"ring_timeout_s": FIRST_RING_S, "max_missed_offers": 0})


def edit(svc, change) -> dict:
    """The settings file as the service reads it, changed by `change(config)`."""
    config = json.loads(json.dumps(svc.config))
    change(config)
    (svc.root / "callrouter.yaml").write_text(json.dumps(config))
    return config


def hup(svc) -> None:
    svc.proc.send_signal(signal.SIGHUP)


def test_settings_edited_and_sighup_apply_without_a_restart(tmp_path, prompts_built):
    acd = start(tmp_path)
    svc = acd.svc
    try:
        media = svc.config["media"]
        assert (media["workers_min"], media["workers_max"]) == (3, 3)
        svc.wait_metric("callrouter_media_workers", lambda v: v == 3)
        rosa = acd.softphone("rosa")
        rosa.register()
        acd.wait_registered()
        # Three offers ring out (3 s each before the reload, 9 s after), the fourth is answered.
        phone = rosa.take([("ignore", 0, 0)] * 3 + [("answer", 500, 2000)], timeout_s=180)
        patient = acd.patient(PRACTICE.name, "+33633333333", end="wait_bye", wait_bye_ms=120000)
        first = acd.record("+33633333333", until=lambda r: any(leg.ended_at for leg in secretary_legs(r)))

        edit(svc, lambda c: (c["controller"].update({"ring_timeout_s": NEXT_RING_S, "hold_prompt": "ringback"}),
                             c["media"].update({"workers_min": 2, "legs_wanted": 4, "spare_calls": 1,
                                                "idle_retire_seconds": 1, "retire_grace_seconds": 0.2}),
                             c["http"].update({"max_body_bytes": 32768}), c.update({"log_level": "DEBUG"}),
                             c.setdefault("auth", {}).update({"sip_realm": "autre-realm"})))
        hup(svc)
        applied = svc.wait_log("settings applied:")
        assert f"controller.ring_timeout_s {FIRST_RING_S!r} -> {NEXT_RING_S!r}" in applied, applied
        assert "media.workers_min 3 -> 2" in applied and "log_level None -> 'DEBUG'" in applied
        assert "http.max_body_bytes" in applied, applied  # the HTTP site's next request
        svc.wait_log(" DEBUG ")                                   # the service logs at its new level
        restart = svc.wait_log("a restart of callrouter serve")
        assert "auth.sip_realm" in restart and "http.max_body_bytes" not in restart, restart
        # The pool follows its new floor: an idle worker retires, the one holding the patient stays.
        svc.wait_metric("callrouter_media_workers", lambda v: v == 2, timeout=40)

        # A broken file is refused with its reason; the values applied before stay in force.
        edit(svc, lambda c: c["controller"].update({"ring_timeout_s": "longtemps"}))
        hup(svc)
        refused = svc.wait_log("settings refused:")
        assert "controller.ring_timeout_s: expected a number >= 0, got 'longtemps'" in refused, refused
        svc.wait_log("the running settings stay")
        svc.wait_metric('callrouter_settings_reloads_total{result="refused"}', lambda v: v == 1)

        assert phone.wait(120) == 0, phone.errors()  # three offers rang out, the fourth answered
        assert patient.wait(30) == 0, patient.errors()  # her call went on until the secretary hung up
        record = acd.record("+33633333333")
        assert (record.outcome, record.cause) == ("answered", None), record
        legs = secretary_legs(record)
        assert len(legs) == 4, legs
        rang = [seconds(leg.ended_at, leg.started_at) for leg in legs[:3]]
        assert [leg.end_cause for leg in legs[:3]] == ["ring_timeout"] * 3, legs
        assert rang[0] < FIRST_RING_S + 1.5, rang   # offered before the reload
        assert rang[2] >= NEXT_RING_S - 0.5, rang   # offered after it, and after the refused file
        assert first.id == record.id and record.secretary == acd.uri("rosa")
        assert svc.metrics()['callrouter_settings_reloads_total{result="applied"}'] == 1

        db = Database.from_url(svc.db_url)
        try:
            entries = AuditLog(db).query(action="settings.reloaded")
        finally:
            db.dispose()
        assert len(entries) == 1 and entries[0].actor == "system", entries
        details = json.loads(entries[0].details)
        assert "controller.ring_timeout_s" in details["applied"] and "auth.sip_realm" in details["restart"]["callrouter"]
    finally:
        acd.kill_started()
        stray = svc.stop()
        assert not stray, f"processes left running after stop: {stray}"
