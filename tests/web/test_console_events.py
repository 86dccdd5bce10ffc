"""The console's event stream fed by the notifier (callrouter.web.sse): the same events as MQTT,
each to the streams allowed to see it."""

import json

from twisted.internet.task import Clock

from callrouter.events.notifier import EventNotifier
from callrouter.events.testing import RecordingPublisher
from callrouter.web.sse import EventHub, Stream, event_kind


def stream(hub: EventHub, who: str, practices=None) -> list[tuple[str, dict]]:
    got: list[tuple[str, dict]] = []

    def write(data: bytes) -> None:
        for block in data.decode().split("\n\n"):
            lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "event" in lines:
                got.append((lines["event"], json.loads(lines["data"])))

    hub.add(Stream(who, None if practices is None else frozenset(practices), write))
    return got


def notifier(hub: EventHub) -> tuple[EventNotifier, RecordingPublisher]:
    mqtt = RecordingPublisher()
    return EventNotifier(mqtt, "n1", Clock(), also=(hub,)), mqtt


def test_every_event_goes_to_mqtt_and_to_the_hub_with_the_same_payload():
    hub = EventHub()
    events, mqtt = notifier(hub)
    seen = stream(hub, "lea")
    events.secretary_changed("sip:lea@edge", "paused", reason="déjeuner")
    assert [s.payload for s in mqtt.on("/secretaries/lea/state")] == [payload for _, payload in seen]
    assert seen[0][0] == "secretary" and seen[0][1]["reason"] == "déjeuner"


def test_a_secretary_gets_her_own_states_and_screen_pops_only():
    hub = EventHub()
    events, _ = notifier(hub)
    lea, maud = stream(hub, "lea", {"cab-a"}), stream(hub, "maud", {"cab-b"})
    events.offer_made({"secretary": "lea", "call_id": "c1", "practice": "cab-a", "caller": {"number": "+33600000000"}})
    assert [kind for kind, _ in lea] == ["screen_pop", "secretary", "call"]
    assert maud == []


def test_call_and_queue_events_go_only_to_users_covering_the_practice():
    hub = EventHub()
    events, _ = notifier(hub)
    a, b, everyone = stream(hub, "lea", {"cab-a"}), stream(hub, "maud", {"cab-b"}), stream(hub, "sup")
    events.call_arrived("c1", "cab-a", "+33612345678")
    events.queue_changed("cab-a", "general", 1, 3.0)
    assert [k for k, _ in a] == ["call", "queue"] and b == [] and len(everyone) == 2
    assert a[0][1]["caller"] != "+33612345678"  # masked, as on MQTT


def test_a_new_stream_gets_her_last_state_first():
    hub = EventHub()
    events, _ = notifier(hub)
    events.secretary_changed("sip:lea@edge", "available")
    later = stream(hub, "lea")
    assert later == [("secretary", later[0][1])] and later[0][1]["state"] == "available"


def test_a_failing_stream_is_dropped_and_mqtt_still_gets_the_event():
    hub = EventHub()
    events, mqtt = notifier(hub)

    def broken(data: bytes) -> None:
        raise ConnectionError("gone")

    hub.streams.append(Stream("lea", None, broken))
    events.secretary_changed("sip:lea@edge", "available")
    assert hub.streams == [] and len(mqtt.on("/secretaries/lea/state")) == 1


def test_topics_the_console_does_not_stream():
    assert event_kind("callrouter/n1/practices/cab-a/card") is None
    assert event_kind("callrouter/n1/status") is None
    assert event_kind("callrouter/n1/escalations/cab-a/exhausted") is None
