"""A real node process (MockFactory pins, synthetic camera, simulated acoustic loop) against a real
mosquitto: ``selftest.run`` published past the hub is obeyed once, answered with every check, and
queued as one ``selftest.result`` event; a forged one is refused."""

from __future__ import annotations

import json
import sqlite3
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.protocol import Command, Event, Topics
from hub.transport.broker import Broker
from tests.conftest import NodeProc, wait_for

KEY = "selftest-node-key-0123456789abcdef"


def _replies_to(broker: Broker, node: str, cmds: list[Command]) -> list[bytes]:
    got: list[bytes] = []
    spy = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"spy-{time.monotonic_ns()}", protocol=mqtt.MQTTv311)
    spy.on_message = lambda c, u, m: got.append(m.payload)
    subscribed: list[bool] = []
    spy.on_subscribe = lambda *a: subscribed.append(True)
    spy.connect("127.0.0.1", broker.port)
    spy.loop_start()
    try:
        spy.subscribe(Topics.replies(node), qos=1)
        wait_for(lambda: subscribed, 5, 0.02, "the spy's SUBACK")
        for cmd in cmds:
            spy.publish(Topics.commands(node), cmd.to_bytes(), qos=1).wait_for_publish(5)
        wait_for(lambda: len(got) >= len(cmds), 30, message=f"the node's {len(cmds)} replies")
    finally:
        spy.disconnect()
        spy.loop_stop()
    return got


def test_a_node_runs_its_self_test_on_a_signed_command(broker: Broker, node_factory) -> None:
    node = node_factory("pole-st1", broker.url, KEY, pins={"button_test_drive": 5})
    run = Command.make("pole-st1", "selftest.run", {}, operator="wang").signed(KEY.encode())
    forged = Command.make("pole-st1", "selftest.run", {}).signed(b"not-the-key")
    replies = [json.loads(p) for p in _replies_to(broker, "pole-st1", [run, forged])]
    by_id = {r["command_id"]: r for r in replies}
    assert by_id[forged.id]["ok"] is False and "bad signature" in by_id[forged.id]["detail"]
    reply = by_id[run.id]
    assert reply["ok"] is True, reply
    checks = {c["name"]: c for c in reply["data"]["checks"]}
    assert checks["button_loop"]["status"] == "pass" and checks["audio_loop"]["status"] == "pass"
    assert checks["camera"]["status"] == "pass" and checks["siren_feedback"]["status"] == "skipped"
    assert reply["data"]["trigger"] == "command" and reply["data"]["command_id"] == run.id
    db = sqlite3.connect(node.data_dir / "outbox.db")
    try:
        events = [Event.model_validate_json(p) for (k, p) in db.execute("SELECT key, payload FROM outbox")
                  if k.startswith("e:")]
    finally:
        db.close()
    kinds = [e.kind for e in events]
    assert kinds.count("selftest.result") == 1 and "alarm.pressed" not in kinds
    assert "command.refused" in kinds


def test_a_door_node_tests_itself_through_the_real_hub_and_says_so_when_the_hub_is_down(
        broker: Broker, hub_factory, tmp_path, sim_dir) -> None:
    """A rental door process (mock pins, the reader simulator on a pty) with a real hub: the nightly run,
    triggered now over the control socket, proves its uplink with a probe's receipt (a round-trip time)
    and measures its clock against the hub's. With the hub stopped, the next run still ends, its uplink
    check failing with "no receipt"; once the hub is back the result arrives and no alarm is raised."""
    import subprocess
    import sys

    import yaml

    hub = hub_factory(broker.url)
    node = "door-st1"
    key = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "add", node, "--kind", "rental_door",
                          "--grid", "G05", "--place", "Block 5", "--out", str(hub.data_dir.parent / "bundles"),
                          "--block-key-file", str(hub.data_dir.parent / "block-5.key")],
                         env=hub.env, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    door = NodeProc(tmp_path, node, broker.url, sim_dir, key, door={"unlock_s": 3},
                    reader={"port": "sim", "timeout": 0.5}, selftest={"uplink_limit_s": 2, "check_timeout_s": 6})
    cfg = yaml.safe_load(door.config_path.read_text())
    cfg["node"].update(kind="rental_door", grid="G05")  # NodeProc writes a pole's config
    door.config_path.write_text(yaml.safe_dump(cfg))
    try:
        _door_through_an_outage(hub, door.start(), node)
    finally:
        door.stop()


def _door_through_an_outage(hub, door, node: str) -> None:
    hub.wait_online(node)

    result = door.control(cmd="selftest")["result"]
    checks = {c["name"]: c for c in result["checks"]}
    assert result["trigger"] == "schedule" and result["ok"] is True, result
    assert checks["uplink"]["status"] == "pass" and 0 < checks["uplink"]["value"] < 2, checks["uplink"]
    assert checks["clock_skew"]["status"] == "pass" and isinstance(checks["clock_skew"]["value"], float)
    assert "probe's receipt" in checks["clock_skew"]["detail"]
    assert checks["reader"]["status"] == "pass" and checks["lock"]["status"] == "pass"
    assert door.control(cmd="state")["state"]["lock"] == "locked"  # never unlocked by its test
    wait_for(lambda: hub.get(f"/api/nodes/{node}/selftests"), 30, message="the door's result at the hub")
    fleet = {g["grid"]: g for g in hub.get("/api/selftest/fleet")["grids"]}
    assert fleet["G05"]["doors"] == 1 and fleet["G05"]["doors_passing"] == 1 and fleet["G05"]["poles"] == 0
    assert hub.get("/api/events", node=node, kind="selftest.probe") == []  # receipted, never stored

    hub.stop()  # its last will says offline; nothing answers the probe
    down = door.control(cmd="selftest")["result"]
    checks = {c["name"]: c for c in down["checks"]}
    assert checks["uplink"]["status"] == "fail" and checks["uplink"]["detail"].startswith("no receipt in 2 s")
    assert checks["clock_skew"]["status"] == "skipped" and "no receipt" in checks["clock_skew"]["detail"]
    assert checks["reader"]["status"] == "pass" and down["ok"] is False
    assert door.alive()

    hub.start()
    wait_for(lambda: len(hub.get(f"/api/nodes/{node}/selftests")) == 2, 60, 0.2, "the failed result after the outage")
    newest = hub.get(f"/api/nodes/{node}/selftests")[0]
    assert [c["name"] for c in newest["checks"] if c["status"] == "fail"] == ["uplink"]
    assert hub.get("/api/alarms") == []  # a hub outage is not a fault of the door
    assert hub.get("/api/events", node=node, kind="selftest.probe") == []
