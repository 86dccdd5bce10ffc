"""The watch's event: its topic documented in docs/events.md, its payload with the number masked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from twisted.internet.task import Clock

from callrouter.domain.watch_views import RunView
from callrouter.events import topics
from callrouter.events.notifier import EventNotifier
from callrouter.events.testing import RecordingPublisher

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
T = dt.datetime(2026, 6, 1, 1, 12, tzinfo=dt.timezone.utc)


def test_the_topic_is_in_the_reference():
    topic = topics.forwarding_watch("NODE", "PRACTICE").replace("NODE", "{node}").replace("PRACTICE", "{practice}")
    assert f"`{topic}`" in DOC.read_text(encoding="utf-8")


def test_a_failed_run_is_published_with_its_number_masked_and_its_alarm():
    published = RecordingPublisher()
    clock = Clock()
    clock.advance(T.timestamp())
    run = RunView(17, "k", "cab/x", "+33142000001", "+33142000001", "+33180000100", "tok", "schedule", "n1",
                  "failed", "no_return", None, T, T, T, None, None)
    EventNotifier(published, "n1", clock).watch_changed(run)
    [sent] = published.sent
    assert sent.topic == "callrouter/n1/practices/cab_x/forwarding-watch" and (sent.qos, sent.retain) == (1, False)
    assert sent.payload == {"v": 1, "at": "2026-06-01T01:12:00+00:00", "type": "forwarding_watch",
                            "practice": "cab/x", "run_id": 17, "number": "+33*******01", "state": "failed",
                            "outcome": "no_return", "rtt_ms": None, "alarm": True}
