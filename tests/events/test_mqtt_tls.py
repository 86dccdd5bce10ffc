"""The shipped Mosquitto configuration (deploy/mosquitto/) run by a real broker on a free loopback
port, with certificates made here: the service publishes over TLS with its certificate and
password; the secretary a screen-pop is for receives it; another secretary, supervision, a client
without TLS, without a certificate or with a wrong password see nothing of it."""

from __future__ import annotations

import asyncio
import getpass
import json
import ssl
import subprocess
from pathlib import Path

import aiomqtt
import pytest
from prometheus_client import CollectorRegistry

from callrouter.config import parse_settings
from callrouter.devtools.certs import TestAuthority
from callrouter.events import topics
from callrouter.events.publisher import MqttPublisher
from callrouter.events.settings import MqttSettings
from tests.events.brokers import MOSQUITTO, free_port, port_open, wait_until
from tests.events.mqtt_support import run_async
from tests.factories import REPO

pytestmark = pytest.mark.integration
DEPLOY = REPO / "deploy" / "mosquitto"
PASSWORDS = {"callrouter": "service-password-1", "supervision": "supervision-pw-2",
             "alice": "alice-password-3", "bob": "bob-password-4"}
NODE = "tls-node"
POP = {"v": 1, "call_id": "c" * 32, "practice": "cabinet-dr-martin", "caller": "+33612345678",
       "reason": "résultats d'analyses"}


def shipped_config(tmp: Path, port: int, certs: Path, passwd: Path) -> str:
    """deploy/mosquitto/callrouter.conf with its paths and port pointed here; each edit must find
    its line, so a change of the shipped file shows here."""
    text = (DEPLOY / "callrouter.conf").read_text()
    edits = {"listener 8883": f"listener {port} 127.0.0.1",
             "/etc/mosquitto/certs/": f"{certs}/",
             "/etc/mosquitto/callrouter.passwd": str(passwd),
             "/etc/mosquitto/callrouter.acl": str(DEPLOY / "callrouter.acl")}
    for old, new in edits.items():
        assert old in text, f"{old!r} not in the shipped configuration"
        text = text.replace(old, new)
    # started as root, mosquitto would switch to its own user, who cannot read the test's files
    return text + f"\nlog_dest stderr\nuser {getpass.getuser()}\n"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mosquitto-tls")
    ca = TestAuthority(tmp / "certs")
    ca.server("broker", ("127.0.0.1",))
    clients = {name: ca.client(name) for name in (*PASSWORDS, "intruder")}
    stranger = TestAuthority(tmp / "stranger", "another CA").client("alice")  # right name, wrong CA
    passwd = tmp / "callrouter.passwd"
    for i, (user, password) in enumerate(PASSWORDS.items()):
        subprocess.run(["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(passwd), user, password],
                       check=True, capture_output=True)
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(shipped_config(tmp, port, tmp / "certs", passwd))
    log = (tmp / "mosquitto.log").open("wb")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log)
    try:
        wait_until(lambda: port_open("127.0.0.1", port) or proc.poll() is not None, what="mosquitto TLS")
        assert proc.poll() is None, (tmp / "mosquitto.log").read_text()
        yield {"port": port, "ca": ca.ca, "clients": clients, "stranger": stranger, "log": tmp / "mosquitto.log"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def client_context(b, name: str | None, ca: Path | None = None, issued=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca or b["ca"]))
    issued = issued or (b["clients"][name] if name else None)
    if issued is not None:
        context.load_cert_chain(str(issued.cert), str(issued.key))
    return context


def subscriber(b, user: str, password: str | None = None, **tls) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", b["port"], username=user, password=password or PASSWORDS.get(user),
                          identifier=f"test-{user}", tls_context=client_context(b, user, **tls), timeout=10)


async def collect(client: aiomqtt.Client, into: list) -> None:
    async for message in client.messages:
        into.append((message.topic.value, message.payload))


def service_settings(b, **overrides) -> MqttSettings:
    c = b["clients"]["callrouter"]
    values = dict(host="127.0.0.1", port=b["port"], tls=True, ca_file=b["ca"], cert_file=c.cert, key_file=c.key,
                  username="callrouter", password=PASSWORDS["callrouter"], reconnect_min_s=0.2, reconnect_max_s=1.0)
    return MqttSettings(**{**values, **overrides})


def test_a_screen_pop_reaches_only_its_secretary_and_the_service(broker):
    pop_topic, state_topic = topics.screen_pop(NODE, "alice"), topics.secretary_state(NODE, "alice")

    async def scenario():
        seen = {name: [] for name in ("alice", "bob", "supervision", "callrouter")}
        async with subscriber(broker, "alice") as alice, subscriber(broker, "bob") as bob, \
                subscriber(broker, "supervision") as supervision, subscriber(broker, "callrouter") as service:
            clients = {"alice": alice, "bob": bob, "supervision": supervision, "callrouter": service}
            tasks = []
            for name, client in clients.items():
                await client.subscribe("#", qos=1)  # everything it may read
                tasks.append(asyncio.ensure_future(collect(client, seen[name])))
            registry = CollectorRegistry()
            publisher = MqttPublisher(service_settings(broker), NODE, registry)
            publisher.start()
            publisher.publish(state_topic, {"v": 1, "state": "ringing"}, retain=True, qos=1)
            publisher.publish(pop_topic, POP, qos=1)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while not (any(t == pop_topic for t, _ in seen["alice"]) and any(t == pop_topic for t, _ in seen["callrouter"])
                       and any(t == state_topic for t, _ in seen["supervision"])):
                assert loop.time() < deadline, seen
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # what should not arrive has had time to
            assert publisher.connected and registry.get_sample_value("callrouter_events_published_total") >= 3
            publisher.publish(state_topic, None, retain=True, qos=1)  # clear the retained state
            await publisher.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        (payload,) = [p for t, p in seen["alice"] if t == pop_topic]
        assert json.loads(payload)["caller"] == "+33612345678"
        assert {t for t, _ in seen["alice"]} <= {pop_topic, state_topic}
        assert seen["bob"] == []  # another secretary: neither alice's screen-pop nor her state
        assert pop_topic not in {t for t, _ in seen["supervision"]}
        assert {t for t, _ in seen["supervision"]} == {topics.status(NODE), state_topic}

    run_async(scenario())


def test_a_client_without_tls_is_refused(broker):
    async def scenario():
        plain = aiomqtt.Client("127.0.0.1", broker["port"], username="alice", password=PASSWORDS["alice"], timeout=5)
        with pytest.raises(aiomqtt.MqttError):
            async with plain:
                await plain.subscribe("#")

    run_async(scenario())


@pytest.mark.parametrize("case", ["no certificate", "certificate of another CA", "wrong password",
                                  "no password", "unknown user"])
def test_a_client_without_the_right_certificate_or_password_is_refused(broker, case):
    async def scenario():
        if case == "no certificate":
            client = aiomqtt.Client("127.0.0.1", broker["port"], username="alice", password=PASSWORDS["alice"],
                                    tls_context=client_context(broker, None), timeout=5)
        elif case == "certificate of another CA":
            client = aiomqtt.Client("127.0.0.1", broker["port"], username="alice", password=PASSWORDS["alice"],
                                    tls_context=client_context(broker, None, issued=broker["stranger"]), timeout=5)
        elif case == "wrong password":
            client = subscriber(broker, "alice", password="not her password")
        elif case == "no password":
            client = aiomqtt.Client("127.0.0.1", broker["port"], tls_context=client_context(broker, "alice"), timeout=5)
        else:  # a valid certificate, but no account
            client = subscriber(broker, "intruder", password="whatever-it-is")
        with pytest.raises(aiomqtt.MqttError):
            async with client:
                await client.subscribe("#")

    run_async(scenario())


def test_the_publisher_does_not_connect_to_a_broker_it_cannot_verify(broker, tmp_path):
    """A CA that did not sign the broker's certificate: no connection, nothing published."""
    other = TestAuthority(tmp_path / "other")

    async def scenario():
        registry = CollectorRegistry()
        publisher = MqttPublisher(service_settings(broker, ca_file=other.ca), NODE + "-x", registry)
        publisher.start()
        publisher.publish(topics.screen_pop(NODE + "-x", "alice"), POP, qos=1)
        await asyncio.sleep(2.0)
        assert not publisher.connected
        assert (registry.get_sample_value("callrouter_events_published_total") or 0) == 0
        await publisher.stop()

    run_async(scenario())


def test_the_mqtt_tls_settings_are_parsed_and_checked(tmp_path):
    settings = parse_settings({"mqtt": {"host": "mqtt.secretariat.lan", "port": 8883, "tls": True,
                                        "ca_file": "/etc/callrouter/mqtt/ca.pem",
                                        "cert_file": "/etc/callrouter/mqtt/node.pem",
                                        "key_file": "/etc/callrouter/mqtt/node.key",
                                        "username": "callrouter", "password": "x"}}, environ={})
    assert settings.mqtt.tls and settings.mqtt.cert_file == Path("/etc/callrouter/mqtt/node.pem")
    assert MqttSettings(cert_file=Path("c.pem"), tls=True).problems() == [
        "mqtt.cert_file and mqtt.key_file: give both (a client certificate) or neither"]
    assert MqttSettings(ca_file=Path("ca.pem")).problems() == [
        "mqtt.ca_file, mqtt.cert_file and mqtt.key_file need mqtt.tls: true"]
