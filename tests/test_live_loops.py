"""The settings a reload now gives to running loops and mails: the retention purge restarted with
its new period, the dialplans polled at their new period, the voicemail e-mails' relay and console
address; each through the reload's own appliers (callrouter.live_settings.running_parts)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from types import SimpleNamespace

from twisted.internet import defer, task

from callrouter.config import parse_settings
from callrouter.dialplan.service import DialplanService
from callrouter.escalation.settings import EscalationSettings
from callrouter.live_settings import running_parts
from callrouter.recording.voicemail import VoicemailMail
from callrouter.store.retention import PurgeService
from callrouter.store.testing import fresh_database
from callrouter.store.voicemails import VoicemailRepository
from tests.factories import dialplan_text, load_one
from tests.reports.conftest import start_smtp

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


class Purger:
    def __init__(self):
        self.runs, self.followed = 0, []

    def purge(self, actor, now):
        self.runs += 1
        return None

    def follow(self, retention):
        self.followed.append(retention)


def test_the_purge_is_restarted_with_its_new_period():
    clock, purger = task.Clock(), Purger()
    purge = PurgeService(purger, clock, 24 * 3600.0, defer.maybeDeferred)
    purge.startService()
    assert purger.runs == 1  # at start
    clock.advance(3600)
    running_parts({"purger": purger, "purge": purge})["retention"](parse_settings(
        {"retention": {"purge_interval_hours": 2}}, environ={}))
    clock.advance(2 * 3600 - 1)
    assert purger.runs == 1
    clock.advance(1)
    assert purger.runs == 2  # two hours after the reload, not 24 after the start
    for _ in range(11):
        clock.advance(2 * 3600)
    assert purger.runs == 13 and len(clock.getDelayedCalls()) == 1  # the old loop scheduled nothing more
    purge.stopService()
    assert clock.getDelayedCalls() == []


class Registry:
    dialplans = {"cab": object()}

    def __init__(self):
        self.polls = 0

    def changed_on_disk(self):
        self.polls += 1
        return False


def test_the_dialplans_are_polled_at_the_new_period():
    clock, registry = task.Clock(), Registry()
    service = DialplanService(registry, 2.0, None, None)
    service.clock = clock
    service.reload = lambda: None
    service.startService()
    assert registry.polls == 1  # at the start
    running_parts({"dialplans": service})["dialplans"](parse_settings({"dialplan_poll_seconds": 10}, environ={}))
    polls = []
    for at in (1.9, 2.1, 9.9, 10.1, 19.9, 20.1):
        clock.advance(at - clock.seconds())
        polls.append(registry.polls)
    assert polls == [1, 2, 2, 3, 3, 4]  # the poll already due at 2 s, then one every 10 s
    service.stopService()


def test_the_voicemail_mails_take_the_new_relay_and_console_address(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old_box, old_server = start_smtp(tmp_path / "old")
    new_box, new_server = start_smtp(tmp_path / "new")
    try:
        with fresh_database("sqlite", tmp_path) as db:
            plan = load_one(tmp_path, dialplan_text(extra="recording:\n  voicemail_email: [cab@example.fr]\n"))
            repo = VoicemailRepository(db)
            repo.add("c9", plan.practice, None, "a" * 32 + ".enc", "k", "0" * 64, 100, 42.0, False, T0, T0, True)
            old = EscalationSettings(smtp_host="127.0.0.1", smtp_port=old_box.port, smtp_cafile=old_box.cert)
            mail = VoicemailMail(repo, lambda: {plan.practice: plan}, old, tmp_path / "out", "https://ancien.example/")
            settings = parse_settings({"escalation": {"smtp_host": "127.0.0.1", "smtp_port": new_box.port,
                                                      "smtp_cafile": str(new_box.cert)},
                                       "controller": {"console_url": "https://accueil.example/console"}}, environ={})
            appliers = running_parts({"recording": SimpleNamespace(mail=mail), "escalation": SimpleNamespace(
                follow=lambda esc: None), "controller": SimpleNamespace(ctx=SimpleNamespace(apply=lambda s: None)),
                "desk": SimpleNamespace()})
            appliers["senders"](settings)
            appliers["console"](settings)
            assert mail.send_due(T0) == 1
    finally:
        old_server.stop()
        new_server.stop()
    assert old_box.envelopes == []
    (envelope,) = new_box.envelopes
    body = email.message_from_bytes(envelope.content, policy=email.policy.default).get_content()
    assert "https://accueil.example/console" in body
