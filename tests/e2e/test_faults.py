"""Faults on real processes: the broker stops, the node and the hub are SIGKILLed mid-stream.

In each case every event the node made must be stored at the hub exactly once.
"""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.protocol import Event, Topics
from hub.transport.broker import Broker
from tests.conftest import wait_for

BURST = 200


def _all_stored(hub, node: str, expected: set[str]) -> bool:
    ids = hub.event_ids(node=node, kind="detection.person")
    assert len(ids) == len(set(ids)), "a duplicate event was stored"
    return set(ids) == expected


@pytest.mark.parametrize("how", ["stopped", "crashed"])
def test_broker_outage_during_burst_loses_nothing(how: str, broker: Broker, hub_factory, node_factory) -> None:
    """A crashed broker loses what it held in memory (PUBACKed or not): only receipts recover it."""
    hub = hub_factory(broker.url)
    node = node_factory("pole-11", broker.url, hub.register("pole-11"))
    ids = set(node.control(cmd="emit", n=BURST)["ids"])
    broker.stop() if how == "stopped" else broker.kill()  # mid-burst
    more = set(node.control(cmd="emit", n=50)["ids"])  # made while the broker is down
    time.sleep(2)
    broker.start()
    wait_for(lambda: _all_stored(hub, "pole-11", ids | more), timeout=60, message="all events after the outage")
    wait_for(lambda: node.control(cmd="state")["state"]["outbox"] == 0, message="outbox drained by receipts")


def test_broker_crash_loses_its_queue_but_receipts_recover_it(broker: Broker, hub_factory, node_factory) -> None:
    """The broker PUBACKs a burst, holds it for the stopped hub, then crashes before saving it:
    the node must still have every event (no receipt yet) and send it again."""
    hub = hub_factory(broker.url)
    node = node_factory("pole-10", broker.url, hub.register("pole-10"))
    hub.stop()
    ids = set(node.control(cmd="emit", n=BURST)["ids"])
    wait_for(lambda: node.control(cmd="state")["state"]["outbox"] == BURST, message="burst in the outbox")
    time.sleep(0.3)  # the broker has PUBACKed them and holds them for the hub's session
    broker.kill()
    broker.start()
    hub.start()
    wait_for(lambda: _all_stored(hub, "pole-10", ids), timeout=60, message="all events after the crash")


def test_node_killed_mid_burst_loses_and_duplicates_nothing(broker: Broker, hub_factory, node_factory) -> None:
    hub = hub_factory(broker.url)
    node = node_factory("pole-12", broker.url, hub.register("pole-12"))
    made: set[str] = set()
    for _round in range(3):
        made |= set(node.control(cmd="emit", n=BURST)["ids"])
        node.kill()  # SIGKILL while entries are between the outbox, the broker and the hub
        stored = set(hub.event_ids(node="pole-12", kind="detection.person"))
        assert stored <= made
        node.start()
    wait_for(lambda: _all_stored(hub, "pole-12", made), timeout=60, message="all events after kills")


def test_hub_killed_mid_ingest_loses_and_duplicates_nothing(broker: Broker, hub_factory, node_factory) -> None:
    hub = hub_factory(broker.url)
    node = node_factory("pole-13", broker.url, hub.register("pole-13"))
    made: set[str] = set()
    for _round in range(3):
        made |= set(node.control(cmd="emit", n=BURST)["ids"])
        wait_for(lambda: len(hub.event_ids(node="pole-13")) > 0, message="ingest under way")
        hub.kill()  # SIGKILL: the broker keeps the hub's persistent session
        hub.start()
    wait_for(lambda: _all_stored(hub, "pole-13", made), timeout=60, message="all events after hub kills")


def test_bad_input_is_rejected_counted_and_hub_keeps_serving(broker: Broker, hub_factory, node_factory) -> None:
    hub = hub_factory(broker.url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="attacker", protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    good = Event.make("pole-14", "alarm.test", {})
    other = Event.make("pole-99", "alarm.pressed", {})  # names another node than its topic
    bad = [
        (Topics.events("pole-14"), b"{not json"),
        (Topics.events("pole-14"), b'{"id": 5, "node": "pole-14", "kind": "alarm.pressed", "ts": "x"}'),
        (Topics.events("pole-14"), b'{"id": "' + str(good.id).encode() + b'", "pad": "' + b"x" * 70000 + b'"}'),
        (Topics.events("pole-14"), other.to_bytes()),
        (Topics.snapshot("pole-14", "not-a-uuid"), b"\xff\xd8jpeg"),
        (Topics.snapshot("pole-14", str(good.id)), b"GIF89a not a jpeg"),
        (Topics.heartbeat("pole-14"), b'{"uptime_s": -1}'),
        (Topics.status("pole-14"), b'{"state": "sideways"}'),
    ]
    for topic, payload in bad:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.publish(Topics.events("pole-14"), good.to_bytes(), qos=1).wait_for_publish(5)
    wait_for(lambda: str(good.id) in hub.event_ids(node="pole-14"), message="the good event after the bad ones")
    client.disconnect()
    client.loop_stop()

    assert other.node not in {n["id"] for n in hub.get("/api/nodes")}
    assert str(other.id) not in hub.event_ids()
    metrics = hub.metrics()
    rejected = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                   if line.startswith("pingan_hub_rejected_total{"))
    assert rejected == len(bad), metrics
    assert 'reason="node mismatch"' in metrics
    assert hub.get("/api/health")["status"] == "ok"
