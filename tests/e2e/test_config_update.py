"""config.update end to end on real servers: mosquitto, `pingan-hub serve` and `pingan-edge run` processes.

A good config is applied and confirmed (the node's events change, and keep changed after a restart);
a config the node cannot come up with is rolled back by the node itself (broker unreachable; a pin
that cannot be opened); a forged command is refused; the hub refuses an invalid config with a 422
and never sends it; only installers and admins may push."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import SITE_FIELDS
from edge.protocol import Command, Topics
from hub.app import create_app
from hub.config import load_settings
from hub.store.schema import commands
from hub.transport.broker import Broker, free_port
from tests.conftest import wait_for
from tests.e2e.test_e2e_door import DOOR, door_factory, register_door  # noqa: F401 - door_factory is a fixture

FAST_TRIAL = {"trial_s": 4, "settle_s": 1, "max_boots": 2}


def _yaml_with(proc, **changes) -> str:
    """The node's config with ``changes``, as an installer pushes it: without the site fields."""
    cfg = yaml.safe_load(proc.config_path.read_text())
    for section, values in changes.items():
        if isinstance(values, dict):
            cfg.setdefault(section, {}).update(values)
        else:
            cfg[section] = values
    for field in SITE_FIELDS:
        section, _, name = field.rpartition(".")
        owner = cfg.get(section, {}) if section else cfg
        owner.pop(name, None)
    if cfg.get("mqtt") == {}:
        del cfg["mqtt"]
    return yaml.safe_dump(cfg)


def _updates(hub, node: str) -> list[dict]:
    return hub.get(f"/api/nodes/{node}/config/updates")


def _wait_state(hub, node: str, command_id: str, states: tuple[str, ...], timeout: float = 40) -> dict:
    def check():
        for u in _updates(hub, node):
            if u["command_id"] == command_id and u["state"] in states:
                return u
        return None
    return wait_for(check, timeout, 0.2, f"config update {command_id} in {states}")


def _press_place(hub, node) -> str:
    """Press the button (once the control socket is back after a restart); the event's place."""
    wait_for(lambda: node.socket.exists(), 30, 0.1, "control socket back")
    before = set(hub.event_ids(node=node.node, kind="alarm.pressed"))
    node.control(cmd="press")
    new = wait_for(lambda: set(hub.event_ids(node=node.node, kind="alarm.pressed")) - before,
                   message="the press at the hub")
    [event] = [e for e in hub.get("/api/events", node=node.node, kind="alarm.pressed") if e["id"] in new]
    return event["data"]["place"]


def _online(hub, node: str) -> None:
    hub.wait_online(node)


def test_good_update_is_applied_confirmed_and_kept(broker: Broker, hub_factory, node_factory) -> None:
    hub = hub_factory(broker.url)
    node = node_factory("pole-c1", broker.url, hub.register("pole-c1"), updates=FAST_TRIAL)
    _online(hub, "pole-c1")
    assert _press_place(hub, node) == "Test street"

    r = hub.post("/api/nodes/pole-c1/config", {"yaml": _yaml_with(node, node={"place": "North gate, Lane 3"})})
    assert r.status_code == 202, r.text
    sent = r.json()
    assert sent["state"] == "sent" and len(sent["sha256"]) == 64
    done = _wait_state(hub, "pole-c1", sent["command_id"], ("applied", "rolled_back", "refused"))
    assert done["state"] == "applied", done
    assert done["reply"]["ok"] is True and "restarting" in done["reply"]["detail"]
    assert done["boots"] == 1 and done["sha256"] == sent["sha256"]
    assert _press_place(hub, node) == "North gate, Lane 3"  # the node's behaviour changed
    assert (node.data_dir / "config" / "confirmed.yaml").exists()
    assert "restarting the node agent" in node.output()
    # a planned restart is not an outage: no node.offline alarm for the staff
    assert not [a for a in hub.get("/api/alarms", state="all") if a["kind"] == "node.offline"]

    node.stop()  # an ordinary restart keeps the confirmed config
    node.start()
    assert _press_place(hub, node) == "North gate, Lane 3"
    kinds = [e["kind"] for e in hub.get("/api/events", node="pole-c1", limit=1000)]
    assert kinds.count("config.applied") == 1 and "config.rolled_back" not in kinds


def _spy(broker: Broker, topic: str) -> tuple[mqtt.Client, list[bytes]]:
    got: list[bytes] = []
    spy = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"spy-{time.monotonic_ns()}", protocol=mqtt.MQTTv311)
    spy.on_message = lambda c, u, m: got.append(m.payload)
    subscribed = []
    spy.on_subscribe = lambda *a: subscribed.append(True)
    spy.connect("127.0.0.1", broker.port)
    spy.loop_start()
    spy.subscribe(topic, qos=1)
    wait_for(lambda: subscribed, 5, 0.02, "the spy's SUBACK")
    return spy, got


def _replies_to(broker: Broker, node: str, cmds: list[Command]) -> list[bytes]:
    """Publish commands straight to the broker (past the hub) and return the node's replies, in order."""
    spy, replies = _spy(broker, Topics.replies(node))
    try:
        for cmd in cmds:
            spy.publish(Topics.commands(node), cmd.to_bytes(), qos=1).wait_for_publish(5)
        wait_for(lambda: len(replies) >= len(cmds), message=f"the node's {len(cmds)} replies")
    finally:
        spy.disconnect()
        spy.loop_stop()
    return replies


def test_a_trial_that_never_reaches_the_hub_rolls_back_even_through_a_crash(
        broker: Broker, hub_factory, node_factory) -> None:
    """The broker takes the node's messages (PUBACK) but the hub never stores them: the trial must fail.

    The hub is frozen (SIGSTOP) once the command is at the broker, so the node tries its new config
    against a broker that acknowledges everything while nothing reaches our hub: the old trial
    (connected + the hub's retained status seen) confirmed that; the end-to-end receipt does not."""
    hub = hub_factory(broker.url)
    node = node_factory("pole-c2", broker.url, hub.register("pole-c2"), updates=FAST_TRIAL)
    _online(hub, "pole-c2")
    spy, seen = _spy(broker, Topics.commands("pole-c2"))
    try:
        r = hub.post("/api/nodes/pole-c2/config", {"yaml": _yaml_with(node, node={"place": "Should not stick"})})
        assert r.status_code == 202, r.text
        cid = r.json()["command_id"]
        wait_for(lambda: any(cid.encode() in p for p in seen), 10, 0.01, "the command at the broker")
        os.kill(hub.proc.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: "trying the pending config" in node.output(), 15, 0.05, "the first trial start")
            node.kill()  # a crash in the middle of a trial start (power cut, OOM): systemd starts it again
            node.start()
            wait_for(lambda: "rolling back" in node.output(), 40, 0.2, "the node's own rollback")
        finally:
            os.kill(hub.proc.pid, signal.SIGCONT)
    finally:
        spy.disconnect()
        spy.loop_stop()
    done = _wait_state(hub, "pole-c2", cid, ("applied", "rolled_back"), timeout=60)
    assert done["state"] == "rolled_back", done
    assert "no end-to-end receipt from the hub" in done["reason"], done
    assert done["boots"] == 3  # two starts tried (the killed one counts), the third went back
    assert node.alive()
    _online(hub, "pole-c2")
    assert _press_place(hub, node) == "Test street"  # back on the last confirmed config
    assert not (node.data_dir / "config" / "pending.yaml").exists()


def test_the_node_refuses_a_signed_push_that_moves_it(broker: Broker, hub_factory, node_factory) -> None:
    """The red team's attack, past the hub: a correctly signed config.update naming another broker and
    the signing key's variable as the MQTT password. The node is the last line: it refuses."""
    hub = hub_factory(broker.url)
    key = hub.register("pole-c6")
    node = node_factory("pole-c6", broker.url, key, updates=FAST_TRIAL)
    _online(hub, "pole-c6")
    cfg = yaml.safe_load(node.config_path.read_text())
    cfg["mqtt"] = {"url": "mqtt://127.0.0.1:1", "password_env": "PINGAN_NODE_KEY"}
    theft = Command.make("pole-c6", "config.update", {"yaml": yaml.safe_dump(cfg)}).signed(key.encode())
    cfg["mqtt"] = {"url": broker.url, "password_env": "../../../etc/hostname"}
    traversal = Command.make("pole-c6", "config.update", {"yaml": yaml.safe_dump(cfg)}).signed(key.encode())
    replies = _replies_to(broker, "pole-c6", [theft, traversal])
    theft_reply, traversal_reply = (json.loads(p) for p in replies)
    assert theft_reply["ok"] is False and "mqtt.url cannot be changed remotely" in theft_reply["detail"]
    assert "mqtt.password_env cannot be changed remotely" in theft_reply["detail"]
    assert traversal_reply["ok"] is False and "password_env" in traversal_reply["detail"]
    assert not (node.data_dir / "config" / "pending.yaml").exists()
    assert "restarting" not in node.output()


def test_a_pin_that_cannot_be_opened_rolls_back(tmp_path: Path, broker: Broker, hub_factory, node_factory) -> None:
    hub = hub_factory(broker.url)
    node = node_factory("pole-c3", broker.url, hub.register("pole-c3"), updates=FAST_TRIAL)
    _online(hub, "pole-c3")
    # GPIO2 has a fixed pull-up on every Pi (I2C): gpiozero refuses a button there without pull-up
    bad = tmp_path / "pole-c3.new.yaml"
    bad.write_text(_yaml_with(node, pins={"alarm_button": 2, "button_pull_up": False}))
    # pushed by an installer with the CLI, which waits for the outcome
    out = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "config", "pole-c3", str(bad), "--hub", hub.url,
                          "--wait", "60"], env={**hub.env, "PINGAN_TOKEN": hub.token},
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "sent config.update" in out.stdout and "pole-c3: rolled_back" in out.stdout, out.stdout
    [done] = _updates(hub, "pole-c3")
    assert done["state"] == "rolled_back", done
    assert "PinFixedPull" in done["reason"] or "fixed pull" in done["reason"]
    assert node.alive()
    assert _press_place(hub, node) == "Test street"


def test_forged_config_update_is_refused_by_the_node(broker: Broker, hub_factory, node_factory) -> None:
    hub = hub_factory(broker.url)
    node = node_factory("pole-c4", broker.url, hub.register("pole-c4"), updates=FAST_TRIAL)
    _online(hub, "pole-c4")
    text = _yaml_with(node, heartbeat_s=3)
    forged = Command.make("pole-c4", "config.update", {"yaml": text}).signed(b"not-the-node-key")
    unsigned = Command.make("pole-c4", "config.update", {"yaml": text})
    replies = _replies_to(broker, "pole-c4", [forged, unsigned])
    assert all(b"bad signature" in p and b'"ok":false' in p for p in replies), replies
    refused = wait_for(lambda: [e for e in hub.get("/api/events", node="pole-c4", kind="command.refused")
                                if e["data"].get("name") == "config.update"], message="command.refused at the hub")
    assert len(refused) == 2
    assert not (node.data_dir / "config" / "pending.yaml").exists()
    assert "restarting" not in node.output()


def test_door_update_restarts_with_the_relay_de_energised(broker: Broker, hub_factory, door_factory) -> None:  # noqa: F811
    hub = hub_factory(broker.url)
    door = door_factory("door-c5", broker.url, register_door(hub, "door-c5"),
                        **{**DOOR, "door": {"unlock_s": 60}, "updates": FAST_TRIAL})
    _online(hub, "door-c5")
    st = door.control(cmd="exit")["state"]
    assert st["relay"] == "energised" and st["lock"] == "released"  # released for 60 s when the update comes
    r = hub.post("/api/nodes/door-c5/config", {"yaml": _yaml_with(door, door={"unlock_s": 2})})
    assert r.status_code == 202, r.text
    done = _wait_state(hub, "door-c5", r.json()["command_id"], ("applied", "rolled_back", "refused"))
    assert done["state"] == "applied", done
    wait_for(lambda: door.socket.exists(), 30, 0.1, "control socket back")
    st = door.control(cmd="state")["state"]
    assert st["relay"] == "de-energised" and st["lock"] == "locked"  # the restart left the lock in its safe state
    assert door.control(cmd="exit")["state"]["lock"] == "released"
    wait_for(lambda: door.control(cmd="state")["state"]["lock"] == "locked", 10, message="locked after the new 2 s")


def test_cli_checks_a_config_before_sending(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("node:\n  id: pole-05\n  kind: alarm_post\nheartbeat_s: 0\n")
    out = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "config", "pole-05", str(bad), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "heartbeat_s (line 4)" in out.stderr and "Traceback" not in out.stderr
    bad.write_text("node:\n  id: pole-05\n  kind: alarm_post\nheartbeat_s: 3\n")
    out = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "config", "pole-05", str(bad), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


# --- the hub's side, in-process (no broker needed: nothing must be sent) ---------------------------
PASSWORDS = {"boss": ("admin", "admin-pass-1"), "wang": ("operator", "operator-pass-1"),
             "zhao": ("installer", "installer-pass-1")}


@pytest.fixture()
def hub_app(tmp_path: Path):
    app = create_app(load_settings(data_dir=tmp_path, mqtt_enabled=False))
    state = app.state.hub
    for name, (role, pw) in PASSWORDS.items():
        state.auth.add_user(name, pw, role)
    state.service.register_node("pole-01", grid="G01")
    with TestClient(app) as client:
        yield state, client


def _headers(client: TestClient, user: str) -> dict[str, str]:
    r = client.post("/api/login", json={"username": user, "password": PASSWORDS[user][1]})
    client.cookies.clear()
    return {"Authorization": f"Bearer {r.json()['token']}"}


GOOD = "node:\n  id: pole-01\n  kind: alarm_post\n  place: Market\nheartbeat_s: 5\n"


def test_invalid_config_is_a_422_with_lines_and_is_never_sent(hub_app) -> None:
    state, client = hub_app
    h = _headers(client, "zhao")
    bad = "node:\n  id: pole-01\n  kind: alarm_post\nheartbeat_s: fast\npins:\n  alarm_buton: 5\n"
    r = client.post("/api/nodes/pole-01/config", json={"yaml": bad}, headers=h)
    assert r.status_code == 422, r.text
    problems = {".".join(p["loc"]): p for p in r.json()["detail"]}
    assert problems["heartbeat_s"]["line"] == 4 and problems["pins.alarm_buton"]["line"] == 6
    assert "unknown field" in problems["pins.alarm_buton"]["msg"]

    other = GOOD.replace("id: pole-01", "id: pole-02")
    r = client.post("/api/nodes/pole-01/config", json={"yaml": other}, headers=h)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["node", "id"]
    assert r.json()["detail"][0]["line"] == 2
    r = client.post("/api/nodes/pole-01/config", json={"yaml": GOOD.replace("alarm_post", "rental_door")},
                    headers=h)
    assert r.status_code == 422
    r = client.post("/api/nodes/pole-01/config", json={"yaml": "node: [oops\n"}, headers=h)
    assert r.status_code == 422 and "not valid YAML" in r.json()["message"]
    r = client.post("/api/nodes/pole-01/config", json={"yaml": "[" * 20000}, headers=h)
    assert r.status_code == 422 and "nested too deeply" in r.json()["message"]
    r = client.post("/api/nodes/pole-01/config", json={}, headers=h)
    assert r.status_code == 422
    leaky = GOOD + "camera:\n  source: rtsp://admin:hunter2@192.168.1.64/stream1\n"
    r = client.post("/api/nodes/pole-01/config", json={"yaml": leaky}, headers=h)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["camera", "source"], r.text
    assert r.json()["detail"][0]["line"] == 7 and "secrets do not travel" in r.json()["detail"][0]["msg"]
    assert client.post("/api/nodes/pole-99/config", json={"yaml": GOOD}, headers=h).status_code == 404
    with state.engine.connect() as conn:
        assert conn.execute(commands.select()).all() == []  # nothing was signed or sent
    assert client.get("/api/nodes/pole-01/config/updates", headers=h).json() == []


def test_push_as_json_object_is_recorded_as_sent(hub_app) -> None:
    state, client = hub_app
    h = _headers(client, "boss")
    r = client.post("/api/nodes/pole-01/config", headers=h,
                    json={"config": {"node": {"id": "pole-01", "kind": "alarm_post"}, "heartbeat_s": 7}})
    assert r.status_code == 202, r.text
    [u] = client.get("/api/nodes/pole-01/config/updates", headers=h).json()
    assert u["command_id"] == r.json()["command_id"] and u["state"] == "sent"
    assert "heartbeat_s: 7" in u["yaml"] and u["operator"] == "boss"


@pytest.mark.parametrize("user,allowed", [("boss", True), ("zhao", True), ("wang", False)])
def test_only_installers_and_admins_push_configs(hub_app, user: str, allowed: bool) -> None:
    state, client = hub_app
    h = _headers(client, user)
    r = client.post("/api/nodes/pole-01/config", json={"yaml": GOOD}, headers=h)
    assert r.status_code == (202 if allowed else 403), r.text
    r = client.get("/api/nodes/pole-01/config/updates", headers=h)
    assert r.status_code == (200 if allowed else 403)
    assert client.post("/api/nodes/pole-01/config", json={"yaml": GOOD}).status_code == 401


def test_push_while_the_hub_has_no_broker_is_a_503(tmp_path: Path) -> None:
    app = create_app(load_settings(data_dir=tmp_path, mqtt_url=f"mqtt://127.0.0.1:{free_port()}"))
    state = app.state.hub
    state.auth.add_user("zhao", PASSWORDS["zhao"][1], "installer")
    state.service.register_node("pole-01", grid="G01")
    with TestClient(app) as client:
        h = _headers(client, "zhao")
        r = client.post("/api/nodes/pole-01/config", json={"yaml": GOOD}, headers=h)
        assert r.status_code == 503 and "not connected to the broker" in r.json()["detail"]
        assert client.post("/api/nodes/pole-01/config", json={"yaml": "node: 1\n"}, headers=h).status_code == 422
        assert client.get("/api/nodes/pole-01/config/updates", headers=h).json() == []
