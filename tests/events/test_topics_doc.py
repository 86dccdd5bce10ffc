"""docs/events.md documents every topic topics.py builds."""

from __future__ import annotations

from pathlib import Path

from callrouter.events import topics

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_every_topic_is_in_the_reference():
    names = {"NODE": "{node}", "CALLID": "{call_id}", "PRACTICE": "{practice}", "QUEUE": "{queue}",
             "SECRETARY": "{secretary}"}
    built = [
        topics.status("NODE"),
        topics.call_state("NODE", "CALLID"),
        topics.queue("NODE", "PRACTICE", "QUEUE"),
        topics.secretary_state("NODE", "SECRETARY"),
        topics.screen_pop("NODE", "SECRETARY"),
        topics.practice_card("NODE", "PRACTICE"),
        topics.practice_tasks("NODE", "PRACTICE"),
        topics.team("NODE"),
        topics.escalation_exhausted("NODE", "PRACTICE"),
        topics.escalation_changed("NODE", "PRACTICE"),
    ]
    text = DOC.read_text(encoding="utf-8")
    for topic in built:
        for placeholder, name in names.items():
            topic = topic.replace(placeholder, name)
        assert f"`{topic}`" in text, topic
