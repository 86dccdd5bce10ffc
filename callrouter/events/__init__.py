"""Events on MQTT: topic names, payloads (the practice card, the screen-pop) and the publisher.

`publisher.MqttPublisher` is the only code that talks to the broker; the controller reaches it
through `notifier.EventNotifier`, which picks the topic, QoS and retain flag of each event. The
topics are documented in docs/events.md.
"""
