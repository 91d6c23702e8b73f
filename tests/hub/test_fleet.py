"""The fleet's broker config, enforced by a real mosquitto: per-node users, ACL, removal."""

from __future__ import annotations

import subprocess
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from edge.protocol import Event, Topics
from hub.app import HubState
from hub.config import load_settings
from hub.nodes.fleet import Fleet, node_config_for, write_bundle
from hub.transport.broker import free_port, port_open
from tests.conftest import wait_for
from tests.mqtt_client import mqtt_connect


@pytest.fixture()
def fleet_broker(tmp_path: Path, mosquitto_exe: str):
    state = HubState(load_settings(data_dir=tmp_path / "hub", mqtt_enabled=False))
    fleet = Fleet(state.engine, state.service)
    a = fleet.add("pole-21", kind="alarm_post", grid="G07")
    b = fleet.add("pole-22", kind="alarm_post", grid="G07")
    port = free_port()
    tls_port = free_port()
    # broker_user="root": pytest's tmp dirs are 0700, out of reach of the user mosquitto (a deployment never)
    conf = fleet.write_broker_config(tmp_path / "broker", port=port, bind="127.0.0.1", tls_port=tls_port,
                                     broker_user="root")
    proc = subprocess.Popen([mosquitto_exe, "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for(lambda: port_open("127.0.0.1", port) and port_open("127.0.0.1", tls_port), 10, message="mosquitto up")
    fleet.tls_port = tls_port
    hub_user, hub_password = fleet.hub_user("1", tmp_path / "broker")
    yield SimpleNamespace(fleet=fleet, port=port, a=a, b=b, hub_login=(hub_user, hub_password),
                          broker_dir=tmp_path / "broker")
    proc.terminate()
    out = proc.communicate(timeout=10)[0].decode(errors="replace")
    assert "Error:" not in out, out


def test_acl_confines_each_node_to_its_own_topics(fleet_broker) -> None:
    port, a, (hub_user, hub_pw) = fleet_broker.port, fleet_broker.a, fleet_broker.hub_login
    got: list[str] = []
    hub, rc = mqtt_connect(port, user=hub_user, password=hub_pw, client_id=hub_user)
    assert rc == 0
    hub.on_message = lambda c, u, m: got.append(m.topic)
    hub.subscribe("pingan/v1/nodes/+/events", qos=1)
    time.sleep(0.3)

    # pole-21 tries another node's session
    node_a, rc = mqtt_connect(port, user="pole-21", password=a.mqtt_password, client_id="pole-22")
    assert rc == 0
    for node in ("pole-22", "pole-21"):
        event = Event.make(node, "alarm.pressed").to_bytes()
        node_a.publish(Topics.events(node), event, qos=1).wait_for_publish(5)
    wait_for(lambda: Topics.events("pole-21") in got, message="pole-21's own event delivered")
    time.sleep(0.3)
    assert got == [Topics.events("pole-21")]  # the spoofed one was PUBACKed but never delivered

    for user, password in ((None, None), ("pole-21", "wrong"), ("pole-99", "x")):
        c, rc = mqtt_connect(port, user=user, password=password)
        assert rc != 0, f"{user} should be refused"
        c.loop_stop()
    for c in (hub, node_a):
        c.disconnect()
        c.loop_stop()


def test_removed_node_cannot_connect_after_reload(fleet_broker) -> None:
    fleet, port, a, b = fleet_broker.fleet, fleet_broker.port, fleet_broker.a, fleet_broker.b
    broker_dir = fleet_broker.broker_dir
    c, rc = mqtt_connect(port, user="pole-22", password=b.mqtt_password)
    assert rc == 0
    c.disconnect()
    c.loop_stop()
    fleet.remove("pole-22")
    fleet.write_broker_config(broker_dir, port=port, bind="127.0.0.1", broker_user="root")
    assert Fleet.reload_broker(broker_dir)
    wait_for(lambda: mqtt_connect(port, user="pole-22", password=b.mqtt_password)[1] != 0, 10,
             message="removed node refused")
    assert mqtt_connect(port, user="pole-21", password=a.mqtt_password)[1] == 0


def test_bundle_holds_a_valid_config_and_the_secrets(tmp_path: Path, fleet_broker) -> None:
    a = fleet_broker.a
    cfg = node_config_for("pole-21", "alarm_post", "G07", "Market", 24.4, 118.1, "mqtts://hub.lan:8883")
    bundle = write_bundle(a, cfg, tmp_path / "out")
    assert bundle.stat().st_mode & 0o777 == 0o600
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        key = tar.extractfile("pole-21/credentials/node-key").read().decode()
    assert {"pole-21/node.yaml", "pole-21/credentials/mqtt-password", "pole-21/pingan-edge.service"} <= set(names)
    assert key == a.signing_key


def test_tls_listener_accepts_our_ca_and_refuses_another(tmp_path: Path, fleet_broker) -> None:
    from hub.nodes.pki import ensure_ca

    fleet, a, broker_dir = fleet_broker.fleet, fleet_broker.a, fleet_broker.broker_dir
    c, rc = mqtt_connect(fleet.tls_port, user="pole-21", password=a.mqtt_password, ca=broker_dir / "ca.crt")
    assert rc == 0
    c.disconnect()
    c.loop_stop()
    _, other_ca = ensure_ca(tmp_path / "other")
    assert mqtt_connect(fleet.tls_port, user="pole-21", password=a.mqtt_password, ca=other_ca)[1] == -1


def test_a_node_cannot_read_another_nodes_commands(fleet_broker) -> None:
    port, a, b, (hub_user, hub_pw) = fleet_broker.port, fleet_broker.a, fleet_broker.b, fleet_broker.hub_login
    got: list[str] = []
    spy, rc = mqtt_connect(port, user="pole-21", password=a.mqtt_password)
    assert rc == 0
    spy.on_message = lambda c, u, m: got.append(m.topic)
    spy.subscribe([(Topics.commands("pole-22"), 1), (Topics.receipts("pole-22"), 1), ("pingan/v1/#", 1)])
    own, rc = mqtt_connect(port, user="pole-22", password=b.mqtt_password)
    own.on_message = lambda c, u, m: got.append("own:" + m.topic)
    own.subscribe(Topics.commands("pole-22"), qos=1)
    time.sleep(0.3)
    hub, rc = mqtt_connect(port, user=hub_user, password=hub_pw, client_id=hub_user)
    hub.publish(Topics.commands("pole-22"), b'{"x": 1}', qos=1).wait_for_publish(5)
    hub.publish(Topics.receipts("pole-22"), b'{"ids": []}', qos=1).wait_for_publish(5)
    wait_for(lambda: "own:" + Topics.commands("pole-22") in got, message="pole-22 gets its own command")
    time.sleep(0.3)
    assert got == ["own:" + Topics.commands("pole-22")]  # the spy on pole-21's account saw nothing
    for c in (spy, own, hub):
        c.disconnect()
        c.loop_stop()
