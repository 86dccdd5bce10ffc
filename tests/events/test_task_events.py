"""Callback-task changes as events (callrouter.events.task_feed and EventNotifier.task_changed):
every change stored in the real task store is announced, to MQTT and to the consoles' streams,
with the task's id and state and never the patient's number."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from twisted.internet.task import Clock

from callrouter.events.notifier import EventNotifier
from callrouter.events.task_feed import CHANGES, AnnouncedTasks
from callrouter.events.testing import RecordingPublisher
from callrouter.store.tasks import TaskRepository
from callrouter.web.sse import EventHub, Stream

T0 = dt.datetime(2027, 2, 3, 9, 0, tzinfo=dt.timezone.utc)
NUMBER = "+33612345678"


def test_every_change_of_the_store_is_announced_with_its_state_and_no_number(db):
    clock = Clock()
    clock.advance(T0.timestamp())
    mqtt, hub = RecordingPublisher(), EventHub()
    streamed: list[bytes] = []
    hub.add(Stream("lea", frozenset({"cab-a"}), streamed.append))
    events = EventNotifier(mqtt, "n1", clock, also=(hub,))
    tasks = AnnouncedTasks(TaskRepository(db), events.task_changed)
    view = tasks.create("cab-a", NUMBER, "voicemail", T0, T0 + dt.timedelta(hours=4))
    tasks.assign(view.id, "lea", T0)
    tasks.done(view.id, None, None, T0)
    other = tasks.create("cab-a", NUMBER, "secretary", T0, T0 + dt.timedelta(minutes=1))
    tasks.expire_due(T0 + dt.timedelta(minutes=2))
    assert tasks.get(view.id).state == "done"  # reads pass through, announce nothing
    sent = mqtt.on("/practices/cab-a/tasks")
    assert [(s.payload["task_id"], s.payload["state"]) for s in sent] == [
        (view.id, "open"), (view.id, "assigned"), (view.id, "done"), (other.id, "open"), (other.id, "expired")]
    assert sent[0].payload["source"] == "voicemail" and sent[1].payload["assigned_to"] == "lea"
    assert all(s.qos == 1 and not s.retain for s in sent)
    assert "612345678" not in json.dumps([s.payload for s in sent])
    assert sum(1 for chunk in streamed if chunk.startswith(b"event: task\n")) == 5


def test_a_stream_of_another_practice_gets_no_task_event():
    hub = EventHub()
    mine, theirs = [], []
    hub.add(Stream("lea", frozenset({"cab-a"}), mine.append))
    hub.add(Stream("maud", frozenset({"cab-b"}), theirs.append))
    hub.publish("callrouter/n1/practices/cab-a/tasks", {"practice": "cab-a", "task_id": "t1", "state": "open"})
    assert [c for c in mine if c.startswith(b"event: task")] and not [c for c in theirs if c.startswith(b"event:")]


def test_an_announcement_that_fails_leaves_the_change_stored(db):
    def broken(view):
        raise RuntimeError("notifier gone")

    tasks = AnnouncedTasks(TaskRepository(db), broken)
    view = tasks.create("cab-a", NUMBER, "secretary", T0, T0 + dt.timedelta(hours=1))
    assert tasks.get(view.id).state == "open"


def test_the_announced_methods_are_the_stores_changes():
    real = {name for name in dir(TaskRepository) if not name.startswith("_")}
    assert CHANGES <= real
    assert {"get", "list", "read", "read_list", "pending"} <= real - CHANGES
