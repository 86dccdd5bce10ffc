"""What a wallboard's event stream gets (callrouter.web.sse fed by the notifier): every
secretary's state for those who manage the team, each change of an escalation chain for the users
of its practice, and the team's changes for everyone; a secretary's console still gets only hers."""

from __future__ import annotations

import json

from twisted.internet.task import Clock

from callrouter.events.notifier import EventNotifier
from callrouter.events.testing import RecordingPublisher
from callrouter.web.sse import EventHub, Stream, event_kind


def stream(hub: EventHub, who: str, practices=None, team: bool = False) -> list[tuple[str, dict]]:
    got: list[tuple[str, dict]] = []

    def write(data: bytes) -> None:
        for block in data.decode().split("\n\n"):
            lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "event" in lines:
                got.append((lines["event"], json.loads(lines["data"])))

    hub.add(Stream(who, None if practices is None else frozenset(practices), write, team=team))
    return got


def test_the_supervisor_sees_every_secretarys_state_a_secretary_only_hers():
    hub = EventHub()
    events = EventNotifier(RecordingPublisher(), "n1", Clock(), also=(hub,))
    board, lea = stream(hub, "super", team=True), stream(hub, "lea", {"cab-a"})
    events.secretary_changed("sip:maud@edge", "paused", reason="déjeuner", by="super")
    events.secretary_changed("sip:lea@edge", "available")
    assert [(k, p["secretary"]) for k, p in board] == [("secretary", "maud"), ("secretary", "lea")]
    assert board[0][1]["by"] == "super"
    assert [(k, p["secretary"]) for k, p in lea] == [("secretary", "lea")]
    events.offer_made({"secretary": "lea", "call_id": "c1", "practice": "cab-a", "caller": {"number": "+33600000000"}})
    assert "screen_pop" not in [k for k, _ in board]  # the pop stays hers: it has the number


def test_escalation_changes_go_to_the_users_of_the_practice_and_team_changes_to_everyone():
    hub = EventHub()
    mqtt = RecordingPublisher()
    events = EventNotifier(mqtt, "n1", Clock(), also=(hub,))
    board, a, b = stream(hub, "super", team=True), stream(hub, "lea", {"cab-a"}), stream(hub, "maud", {"cab-b"})
    events.escalation_changed(42, "cab-a")
    events.team_changed(7)
    assert [k for k, _ in board] == ["escalation", "team"] and [k for k, _ in a] == ["escalation", "team"]
    assert [k for k, _ in b] == ["team"]
    assert board[0][1] == {"v": 1, "at": board[0][1]["at"], "type": "escalation_changed", "escalation_id": 42,
                           "practice": "cab-a"}
    assert [m.payload["escalation_id"] for m in mqtt.on("/escalations/cab-a/changed")] == [42]


def test_the_kinds_of_the_topics_a_wallboard_follows():
    assert event_kind("callrouter/n1/team") == "team"
    assert event_kind("callrouter/n1/escalations/cab-a/changed") == "escalation"
    assert event_kind("callrouter/n1/escalations/cab-a/exhausted") is None  # its end is a change too
    assert event_kind("callrouter/n1/practices/cab-a/card") is None
