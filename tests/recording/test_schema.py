"""The dialplan's `recording` section: read into a RecordingSpec, every mistake refused with its
file, line and key."""

from __future__ import annotations

import datetime as dt

from callrouter.domain.recording import CAMPAIGN, CONSENT_PROMPT, OFF, ON_DEMAND, SAMPLED
from tests.factories import dialplan_text, load_errors, load_one


def recording(text: str) -> str:
    return dialplan_text(extra="recording:\n" + "".join(f"  {line}\n" for line in text.splitlines()))


def messages(errors) -> list[tuple[int, str, str]]:
    return [(e.line, e.path, e.message) for e in errors]


def test_without_the_section_nothing_is_recorded(tmp_path):
    assert load_one(tmp_path, dialplan_text()).recording is None


def test_a_sampled_policy_with_the_practices_message_and_a_number_of_its_own(tmp_path):
    plan = load_one(tmp_path, recording(
        'mode: sampled\npercent: 12.5\nconsent: "Cet appel peut être enregistré. Tapez 9 pour refuser."\n'
        'consent_wait: 4s\nnumbers:\n  "+33100000001": {mode: off}\nvoicemail_email: [cab@example.fr]'))
    spec = plan.recording
    assert (spec.default.mode, spec.default.percent, spec.default.refuse_digit) == (SAMPLED, 12.5, "9")
    assert spec.default.consent_wait_s == 4.0 and spec.default.consent_prompt == CONSENT_PROMPT
    assert spec.policy_for("+33100000001").mode == OFF
    assert spec.voicemail_emails == ("cab@example.fr",)
    # The practice's message is its own prompt text, built and played for it.
    assert plan.prompts[CONSENT_PROMPT] == "Cet appel peut être enregistré. Tapez 9 pour refuser."


def test_a_campaign_and_on_demand(tmp_path):
    campaign = load_one(tmp_path, recording("mode: campaign\nfrom: 2026-03-02\nto: 2026-03-27")).recording.default
    assert (campaign.mode, campaign.first_day, campaign.last_day, campaign.percent) == \
        (CAMPAIGN, dt.date(2026, 3, 2), dt.date(2026, 3, 27), 100.0)
    assert load_one(tmp_path, recording("mode: on_demand")).recording.default.mode == ON_DEMAND


def test_mistakes_are_refused_with_line_and_key(tmp_path):
    text = recording('mode: sampeld\npercent: 150\nrefuse_digit: "#"\nfrom: 2026-03-02\n'
                     'numbers:\n  "+33199999999": {mode: off}\nvoicemail_email: "pas-une-adresse"\ncolour: blue')
    base = text.splitlines().index("recording:") + 1  # the section's line
    errors = messages(load_errors(tmp_path, text))
    paths = {path for _, path, _ in errors}
    assert {"recording.mode", "recording.percent", "recording.refuse_digit", "recording.from",
            "recording.numbers.+33199999999", "recording.voicemail_email", "recording.colour"} <= paths
    lines = {path: line for line, path, _ in errors}
    assert lines["recording.mode"] == base + 1 and lines["recording.percent"] == base + 2
    assert lines["recording.colour"] == base + 8
    text = dict((path, message) for _, path, message in errors)
    assert 'did you mean "sampled"' in text["recording.mode"]


def test_a_campaign_needs_its_days_and_another_key_needs_its_own_message(tmp_path):
    errors = messages(load_errors(tmp_path, recording("mode: campaign\nfrom: 2026-03-27\nto: 2026-03-02")))
    assert any(path == "recording.to" and "before" in message for _, path, message in errors)
    errors = messages(load_errors(tmp_path, recording("mode: campaign")))
    assert any('needs "from" and "to"' in message for _, _, message in errors)
    errors = messages(load_errors(tmp_path, recording('mode: sampled\npercent: 5\nrefuse_digit: "7"')))
    assert any(path == "recording.consent" and "says 9" in message for _, path, message in errors)
    assert load_one(tmp_path, recording('mode: sampled\npercent: 5\nrefuse_digit: "7"\n'
                                        'consent: "Pour refuser l\'enregistrement, tapez 7."')).recording
