"""The weekly e-mail through a real SMTP server with STARTTLS on loopback, on SQLite and
PostgreSQL: sent once when due by the minute timer on the service's clock, with the PDF attached;
not again at the next check nor after a restart of the sender; a relay that refuses is tried again
later; a send cut short while the relay may hold the message is never repeated."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import time

import pytest_twisted
from twisted.internet import defer, reactor, task

from callrouter.store.reports import ReportOutbox
from tests.reports import seed as S
from tests.reports.conftest import free_port, start_smtp
from tests.reports.weekly_support import DUE, SENDER, clock_at, dialplans, smtp_settings, weekly_service



@defer.inlineCallbacks
def poll(condition, what: str, bound_s: float = 60.0):
    """Let the reactor run until `condition()` (bounded; never asserts on the time taken)."""
    deadline = time.monotonic() + bound_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        yield task.deferLater(reactor, 0.05, lambda: None)


def row(db):
    return ReportOutbox(db).get(S.PRACTICE, 2026, 13)


@pytest_twisted.inlineCallbacks
def test_the_weekly_report_is_received_once_and_not_again_after_a_restart(db, smtp_server, tmp_path):
    S.seed(db)
    plans = dialplans(tmp_path / "dialplans")
    settings = smtp_settings(smtp_server.port, smtp_server.cert)
    clock = clock_at(DUE - dt.timedelta(minutes=1))
    first = weekly_service(db, plans, settings, clock)
    first.startService()  # checks at once: a minute early, nothing is due (week 12 is past its catch-up)
    yield first.tick()
    assert smtp_server.envelopes == [] and row(db) is None
    clock.advance(60)  # the timer's next check, at 07:00
    yield poll(lambda: row(db) is not None and row(db).state == "sent", "the report to be sent")
    [envelope] = smtp_server.envelopes
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == ["dr.lefevre@cabinet-etang.example", "accueil@cabinet-etang.example"]
    mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert mail["Subject"] == "Rapport hebdomadaire du télésecrétariat — Cabinet médical de l'Étang — semaine 13"
    assert mail["Message-ID"] == "<report-cabinet-exemple-2026-W13@callrouter>" == row(db).message_id
    text = mail.get_body(("plain",)).get_content()
    assert "pour Cabinet médical de l'Étang, du lundi 23 mars au dimanche 29 mars 2026." in text
    assert "- Niveau de service : 50\u202f% (4/8 décrochés en 30\u00a0s ou moins · objectif 80\u202f%)" in text
    assert "- Escalades : 3 déclenchée(s), 1 restée(s) sans accusé de réception" in text
    [pdf] = list(mail.iter_attachments())
    assert (pdf.get_content_type(), pdf.get_filename()) == ("application/pdf", "rapport-cabinet-exemple-2026-W13.pdf")
    assert pdf.get_content().startswith(b"%PDF-")
    clock.advance(60)
    yield first.tick()  # the next checks find the week sent
    first.stopService()
    again = weekly_service(db, plans, settings, clock)  # a restart of the sender
    again.startService()
    yield again.tick()
    clock.advance(3600)
    yield again.tick()
    again.stopService()
    assert len(smtp_server.envelopes) == 1
    assert (row(db).state, row(db).attempts) == ("sent", 1)


@pytest_twisted.inlineCallbacks
def test_a_relay_that_is_down_is_tried_again_later_and_the_report_goes_once(sqlite_db, tmp_path):
    S.seed(sqlite_db)
    plans = dialplans(tmp_path / "dialplans")
    port = free_port()
    controller = None
    clock = clock_at(DUE)
    try:
        service = weekly_service(sqlite_db, plans, smtp_settings(port, None), clock)  # nobody listens there
        yield service.tick()
        assert (row(sqlite_db).state, row(sqlite_db).attempts) == ("failed", 1)
        assert row(sqlite_db).error.startswith("SMTP:")
        mailbox, controller = start_smtp(tmp_path, port)
        service = weekly_service(sqlite_db, plans, smtp_settings(port, mailbox.cert), clock)
        clock.advance(5 * 60)
        yield service.tick()  # too soon after the failure
        assert mailbox.envelopes == [] and row(sqlite_db).state == "failed"
        clock.advance(11 * 60)
        yield service.tick()
        yield service.tick()
        assert len(mailbox.envelopes) == 1
        assert (row(sqlite_db).state, row(sqlite_db).attempts) == ("sent", 2)
    finally:
        if controller is not None:
            controller.stop()


@pytest_twisted.inlineCallbacks
def test_a_send_cut_short_while_the_relay_may_have_it_is_marked_unknown_and_never_repeated(sqlite_db, tmp_path):
    S.seed(sqlite_db)
    plans = dialplans(tmp_path / "dialplans")
    mailbox, controller = start_smtp(tmp_path, hold_s=3.0)  # answers DATA after the sender gave up
    try:
        clock = clock_at(DUE)
        service = weekly_service(sqlite_db, plans, smtp_settings(mailbox.port, mailbox.cert, timeout_s=1.0), clock)
        yield service.tick()
        assert row(sqlite_db).state == "unknown" and "cut short" in row(sqlite_db).error
        assert mailbox.receiving == 1  # the relay had the whole message when the sender gave up
        for _ in range(3):
            clock.advance(20 * 60)
            yield service.tick()
        yield task.deferLater(reactor, 3.5, lambda: None)  # past the relay's hold
        assert mailbox.receiving == 1 and len(mailbox.envelopes) <= 1
    finally:
        controller.stop()
