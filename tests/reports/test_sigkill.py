"""The weekly sender as a separate process killed with SIGKILL while the relay holds the report's
DATA unanswered, then restarted on the same database: the week is marked unknown, not sent again."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest_twisted

from callrouter.store.reports import ReportOutbox
from callrouter.store.testing import fresh_database
from tests.reports import seed as S
from tests.reports.conftest import start_smtp
from tests.reports.weekly_support import DUE, clock_at, dialplans, smtp_settings, wait_until, weekly_service

ROOT = Path(__file__).resolve().parents[2]


@pytest_twisted.inlineCallbacks
def test_sigkill_mid_send_then_restart_marks_the_week_unknown_and_sends_nothing_twice(tmp_path):
    mailbox, controller = start_smtp(tmp_path, hold_s=30.0)
    child = None
    try:
        with fresh_database("sqlite", tmp_path) as db, (tmp_path / "child.log").open("w") as log:
            S.seed(db)
            folder = tmp_path / "dialplans"
            plans = dialplans(folder)
            outbox = ReportOutbox(db)
            child = subprocess.Popen([sys.executable, "-m", "tests.reports.sender_child", db.url, str(mailbox.port),
                                      str(mailbox.cert), str(folder)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
            wait_until(lambda: mailbox.receiving == 1, "the child to hand the report over")
            assert outbox.get(S.PRACTICE, 2026, 13).state == "sending"
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            restarted = weekly_service(db, plans, smtp_settings(mailbox.port, mailbox.cert), clock_at(DUE))
            yield restarted.tick()
            view = outbox.get(S.PRACTICE, 2026, 13)
            assert (view.state, view.attempts) == ("unknown", 1)
            assert view.error == "interrupted by a restart; not re-sent"
            yield restarted.tick()
            time.sleep(0.5)
            assert mailbox.receiving == 1
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        controller.stop()
