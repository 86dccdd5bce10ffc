"""The controller's facade: which topic, QoS and retain flag each moment of a call uses, in which
order, and where the caller's number may appear (only in the screen-pop)."""

from __future__ import annotations

import json

import pytest
from twisted.internet.task import Clock

from callrouter.events import topics
from callrouter.events.notifier import EventNotifier
from callrouter.events.publisher import MqttPublisher
from callrouter.events.testing import RecordingPublisher
from tests.factories import examples

CALLER = "+33612345678"


def test_the_fake_publisher_has_the_real_signature():
    import inspect

    assert inspect.signature(RecordingPublisher.publish) == inspect.signature(MqttPublisher.publish)


@pytest.fixture
def setup():
    clock = Clock()
    clock.advance(1_800_000_000)
    pub = RecordingPublisher()
    return EventNotifier(pub, "node1", clock), pub


def test_a_call_from_arrival_to_end(setup):
    events, pub = setup
    plan = examples()["msp-val-de-moselle"]
    events.call_arrived("c1", plan.practice, CALLER, site="ars")
    events.call_in_ivr("c1", plan.practice, "triage")
    events.call_queued("c1", plan.practice, "priority", reason="urgence", tier="urgent")
    events.queue_changed(plan.practice, "priority", 1, 0.0)
    events.call_offered(plan, call_id="c1", secretary_uri="sip:alice@10.0.0.5;transport=tls", caller=CALLER,
                        calls_today=2, site="ars", queue="priority", reason="urgence", tier="urgent",
                        ivr_answers=[("triage", "2")])
    events.call_answered("c1", plan.practice, "sip:alice@10.0.0.5", waited_s=12.345)
    events.call_ended("c1", plan.practice, "answered")
    kinds = [(t, (p or {}).get("state"), r, q) for t, p, r, q in pub.sent]
    call = "callrouter/node1/calls/c1/state"
    alice = "callrouter/node1/secretaries/alice/state"
    assert kinds == [
        (call, "arrived", False, 1),
        (call, "ivr", False, 1),
        (call, "queued", False, 1),
        ("callrouter/node1/queues/msp-val-de-moselle/priority", None, True, 1),
        ("callrouter/node1/secretaries/alice/screen-pop", None, False, 1),  # before her phone rings
        (alice, "ringing", True, 1),
        (call, "offered", False, 1),
        (alice, "on_call", True, 1),
        (call, "answered", False, 1),
        (call, "ended", False, 1),
    ]
    pop = pub.sent[4][1]
    assert pop["caller"]["number"] == CALLER and pop["card"]["practice"] == plan.practice
    assert pub.sent[0][1]["caller"] == "+33*******78"
    assert pub.sent[8][1]["waited_s"] == 12.3
    assert pub.sent[9][1]["outcome"] == "answered" and "cause" not in pub.sent[9][1]
    assert pub.sent[0][1]["at"] == "2027-01-15T08:00:00+00:00"
    assert pub.states("c1") == ["arrived", "ivr", "queued", "offered", "answered", "ended"]
    assert len(pub.on("/screen-pop")) == 1


def test_the_raw_caller_number_is_only_in_the_screen_pop_and_never_in_a_topic(setup):
    events, pub = setup
    plan = examples()["cabinet-dr-martin"]
    events.call_arrived("c2", plan.practice, CALLER)
    events.call_offered(plan, call_id="c2", secretary_uri=f"sip:{CALLER}@trunk", caller=CALLER, calls_today=1)
    events.call_ended("c2", plan.practice, "abandoned")
    for topic, payload, _, _ in pub.sent:
        assert CALLER not in topic and "33612345678" not in topic
        if not topic.endswith("/screen-pop"):
            assert "612345678" not in json.dumps(payload), topic


def test_practice_card_is_retained_and_removal_clears_it(setup):
    events, pub = setup
    plan = examples()["cabinet-dr-martin"]
    events.practice_loaded(plan)
    events.practice_removed(plan.practice)
    assert [(t, r, p is None) for t, p, r, _ in pub.sent] == [
        ("callrouter/node1/practices/cabinet-dr-martin/card", True, False),
        ("callrouter/node1/practices/cabinet-dr-martin/card", True, True),
    ]


def test_secretary_states_pause_reason_and_unknown_states(setup, caplog):
    events, pub = setup
    events.secretary_changed("sip:bob@x", "paused", reason="pause déjeuner")
    events.secretary_changed("sip:bob@x", "dancing")
    assert len(pub.sent) == 1
    assert pub.sent[0][1]["state"] == "paused" and pub.sent[0][1]["reason"] == "pause déjeuner"
    assert "unknown state" in caplog.text


def test_a_failing_payload_is_logged_never_raised(setup, caplog):
    events, pub = setup
    events.call_offered(None, call_id="c3", secretary_uri="sip:a@b", caller=None, calls_today=1)
    assert pub.sent == [] and "call_offered" in caplog.text


@pytest.mark.parametrize("uri, expected", [
    ("sip:alice@10.0.0.5:5061;transport=tls", "alice"),
    ("sips:Marie.Dupont@secretariat.example", "Marie.Dupont"),
    ("alice", "alice"),
    ("sip:a/b+c#@host", "a_b_c_"),
])
def test_secretary_id(uri, expected):
    assert topics.secretary_id(uri) == expected


def test_a_number_as_secretary_login_becomes_a_hash():
    sid = topics.secretary_id(f"sip:{CALLER}@trunk")
    assert sid.startswith("n-") and "612345678" not in sid
    assert sid == topics.secretary_id(f"sip:{CALLER}@other")


def test_topic_levels_never_contain_wildcards_or_separators():
    assert topics.call_state("a/b", "c+#") == "callrouter/a_b/calls/c__/state"
    assert topics.queue("n", "", "q") == "callrouter/n/queues/_/q"


def test_cards_follow_the_dialplan_reloads(setup):
    """Only a changed card is published again; a practice whose dialplan is gone loses its card."""
    from dataclasses import replace

    events, pub = setup
    plans = examples()
    events.practices_loaded(plans)
    assert len(pub.sent) == 3 and all(r and p for _, p, r, _ in pub.sent)
    pub.sent.clear()
    events.practices_loaded(plans)
    assert pub.sent == []
    changed = dict(plans)
    del changed["msp-val-de-moselle"]
    changed["cabinet-dr-martin"] = replace(plans["cabinet-dr-martin"], version="new")
    events.practices_loaded(changed)
    assert [(t.split("/")[-2], p is None) for t, p, _, _ in pub.sent] == [
        ("msp-val-de-moselle", True), ("cabinet-dr-martin", False)]


def test_build_events_off_and_on():
    from prometheus_client import CollectorRegistry

    from callrouter.events.build import NoPublisher, build_events
    from callrouter.events.service import EventsService
    from callrouter.events.settings import MqttSettings

    service, notifier = build_events(MqttSettings(enabled=False), "n", CollectorRegistry(), Clock())
    assert service is None and isinstance(notifier.publisher, NoPublisher)
    notifier.call_ended("c", "p", "answered")
    registry = CollectorRegistry()
    service, notifier = build_events(MqttSettings(), "n", registry, Clock())
    assert isinstance(service, EventsService) and notifier.publisher is service.publisher
    assert registry.get_sample_value("callrouter_events_broker_connected") == 0


def test_an_exhausted_escalation_goes_to_the_supervisors_topic_with_the_number_masked(setup):
    import datetime as dt

    events, pub = setup
    events.escalation_exhausted(escalation_id=42, reference="E42", practice="cab", tier="vital", call_id="c1",
                                caller=CALLER, started_at=dt.datetime(2027, 2, 3, 21, 0, tzinfo=dt.timezone.utc),
                                steps_sent=4, declined_by=("dr-martin",), duty_alerts=("sms",))
    [sent] = pub.sent
    assert sent.topic == "callrouter/node1/escalations/cab/exhausted" and sent.qos == 1 and not sent.retain
    assert sent.payload["caller"] == "+33*******78" and CALLER not in json.dumps(sent.payload)
    assert {k: sent.payload[k] for k in ("type", "escalation_id", "reference", "tier", "declined_by",
                                         "duty_alerts", "steps_sent", "started_at")} == {
        "type": "escalation_exhausted", "escalation_id": 42, "reference": "E42", "tier": "vital",
        "declined_by": ["dr-martin"], "duty_alerts": ["sms"], "steps_sent": 4,
        "started_at": "2027-02-03T21:00:00+00:00"}
